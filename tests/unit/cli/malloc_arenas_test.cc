// LimitMallocArenas: threads that allocate at the same time share at most two glibc
// arenas (without the limit each would get its own, up to 8 per core); a
// MALLOC_ARENA_MAX in the environment is left to glibc. Not under the sanitizers: they
// replace malloc.

#include "common/cli/malloc_arenas.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace rlhf::cli {
namespace {

// The arenas glibc has created, from malloc_info's XML (one <heap nr=...> each).
int Arenas() {
  char* buffer = nullptr;
  size_t length = 0;
  FILE* out = open_memstream(&buffer, &length);
  malloc_info(0, out);
  fclose(out);
  const std::string xml(buffer, length);
  free(buffer);
  int heaps = 0;
  for (size_t at = xml.find("<heap nr="); at != std::string::npos;
       at = xml.find("<heap nr=", at + 1)) {
    ++heaps;
  }
  return heaps;
}

TEST(MallocArenasTest, ConcurrentThreadsShareAtMostTwoArenas) {
  unsetenv("MALLOC_ARENA_MAX");
  ASSERT_EQ(LimitMallocArenas(), kMallocArenas);
  constexpr int kThreads = 8;
  std::atomic<int> started{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      ++started;
      while (started.load() < kThreads) {
      }
      std::vector<void*> blocks;
      for (int i = 0; i < 2000; ++i) blocks.push_back(malloc(256 + i % 512));
      for (void* block : blocks) free(block);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_LE(Arenas(), kMallocArenas);
}

TEST(MallocArenasTest, TheEnvironmentDecides) {
  setenv("MALLOC_ARENA_MAX", "4", 1);
  EXPECT_EQ(LimitMallocArenas(), 0);
  unsetenv("MALLOC_ARENA_MAX");
}

}  // namespace
}  // namespace rlhf::cli
