#include "common/cli/malloc_arenas.h"

#include <malloc.h>

#include <cstdlib>

namespace rlhf::cli {

int LimitMallocArenas() {
  if (std::getenv("MALLOC_ARENA_MAX") != nullptr) return 0;
  mallopt(M_ARENA_MAX, kMallocArenas);
  return kMallocArenas;
}

}  // namespace rlhf::cli
