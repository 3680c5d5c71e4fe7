#pragma once
// Paths a caller names (a job's model dirs, datasets and checkpoint dir; an actor's
// checkpoint directory) confined to a root the operator chose: a relative path resolves
// against the root, an absolute one must already lie in it, and "..", symlinks of the
// parts that exist, and "." are resolved before the check, so none of them escapes.

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace rlhf::io {

// The resolved absolute path, or InvalidArgument "<field>: <path> is outside <root>"
// (also for an empty path). An empty `root` confines nothing: `path` made absolute.
absl::StatusOr<std::filesystem::path> ResolveUnder(const std::filesystem::path& root,
                                                   const std::string& path,
                                                   const std::string& field);

// True when `path` is `root` or lies under it (both made absolute and canonical first).
bool IsUnder(const std::filesystem::path& root, const std::filesystem::path& path);

}  // namespace rlhf::io
