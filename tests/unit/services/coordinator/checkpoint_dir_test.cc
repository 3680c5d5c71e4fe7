// services/coordinator/checkpoint_dir.h: a job writes (and prunes) only a directory of
// checkpoints; anything else there stops it before it writes or deletes a byte.

#include "services/coordinator/checkpoint_dir.h"

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/testing/temp_dir.h"

namespace rlhf::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(CheckpointDirTest, ClaimsMissingEmptyAndCheckpointOnlyDirectories) {
  test_support::TempDir temp;
  const fs::path fresh = temp.path() / "a/b/job-1";
  ASSERT_TRUE(ClaimCheckpointDir(fresh, "job-1").ok());
  EXPECT_EQ(Read(fresh / kCheckpointMarker), "job-1\n");

  // A re-run of a job file into the same directory: checkpoints of an earlier job.
  fs::create_directories(fresh / "iter-000002/policy");
  fs::create_directories(fresh / ".iter-000003.tmp");
  fs::create_directories(fresh / "final");
  ASSERT_TRUE(ClaimCheckpointDir(fresh, "job-2").ok());
  EXPECT_EQ(Read(fresh / kCheckpointMarker), "job-2\n");
  EXPECT_TRUE(fs::exists(fresh / "iter-000002/policy"));
}

TEST(CheckpointDirTest, RefusesDirectoriesHoldingAnythingElseAndTouchesNothing) {
  test_support::TempDir temp;
  const fs::path data = temp.path() / "data";
  fs::create_directories(data / "iter-000001");
  std::ofstream(data / "notes.txt") << "mine";
  absl::Status claimed = ClaimCheckpointDir(data, "job-1");
  EXPECT_EQ(claimed.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(claimed.message(),
              HasSubstr("checkpoint.dir " + data.string() + " holds other files ('notes.txt')"));
  EXPECT_FALSE(fs::exists(data / kCheckpointMarker));
  EXPECT_EQ(Read(data / "notes.txt"), "mine");

  const fs::path file = temp.path() / "file";
  std::ofstream(file) << "x";
  EXPECT_THAT(ClaimCheckpointDir(file, "job-1").message(), HasSubstr("is not a directory"));
  EXPECT_EQ(Read(file), "x");
}

TEST(CheckpointDirTest, KnowsWhatTheCoordinatorAndTheActorWriteThere) {
  for (const char* name :
       {"iter-000001", ".iter-000001.tmp", "final", ".final.staging-12-0", kCheckpointMarker}) {
    EXPECT_TRUE(IsCheckpointEntry(name)) << name;
  }
  for (const char* name : {"model.safetensors", "config.json", "finals", "iteration", ".git"}) {
    EXPECT_FALSE(IsCheckpointEntry(name)) << name;
  }
}

}  // namespace
}  // namespace rlhf::coordinator
