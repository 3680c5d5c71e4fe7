#pragma once

// glibc gives each thread that allocates concurrently its own malloc arena, up to 8 per
// core, and an arena keeps the memory it freed: with gRPC's and torch's thread pools most
// of a process's resident memory can be idle arenas (issue 16 measured 13 arenas of 52-65 MB in
// `rlhf local`). Every binary's main() calls LimitMallocArenas() first: 2 arenas unless
// MALLOC_ARENA_MAX is set in the environment (then glibc's own setting stands).

namespace rlhf::cli {

inline constexpr int kMallocArenas = 2;

// Returns the limit in force (0: glibc's default, when the environment sets it).
int LimitMallocArenas();

}  // namespace rlhf::cli
