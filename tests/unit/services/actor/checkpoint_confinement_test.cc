// The actor's SaveCheckpoint/LoadCheckpoint (common/serving/actor/actor_core.h) stay
// inside --checkpoint-root, may load the initial policy, and never replace a directory
// that is not a checkpoint: each refusal leaves the file system as it was.

#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/serving/actor/actor_core.h"
#include "tests/unit/testing/temp_dir.h"

namespace rlhf::actor {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

fs::path ModelDir() { return fs::path(RLHF_SOURCE_DIR) / "tests/golden/fixtures/models/gpt2"; }

v1::CheckpointRequest At(const fs::path& dir, bool weights_only = false) {
  v1::CheckpointRequest request;
  request.set_directory(dir.string());
  request.set_weights_only(weights_only);
  return request;
}

TEST(CheckpointConfinementTest, OnlyUnderTheRootAndNeverOverOtherData) {
  test_support::TempDir temp;
  const fs::path root = temp.path() / "checkpoints";
  fs::create_directories(root);
  const fs::path outside = temp.path() / "precious";
  fs::create_directories(outside);
  std::ofstream(outside / "keep.txt") << "user data";
  std::ofstream(root / "notes.txt") << "x";

  train::TrainerOptions options;
  auto trainer = train::PolicyTrainer::Load(ModelDir(), /*value_head=*/true, options);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ActorCore core(std::move(*trainer));
  core.ConfineCheckpoints(root, ModelDir());
  v1::CheckpointResponse response;

  // Inside the root (relative or absolute): saved and loaded.
  ASSERT_TRUE(core.SaveCheckpoint(At("job-1/iter-000001"), &response).ok());
  EXPECT_TRUE(fs::exists(root / "job-1/iter-000001/trainer_state.json"));
  EXPECT_TRUE(core.LoadCheckpoint(At(root / "job-1/iter-000001"), &response).ok());
  // A checkpoint is replaced by the next save to the same directory.
  EXPECT_TRUE(core.SaveCheckpoint(At(root / "job-1/iter-000001"), &response).ok());
  // The initial policy may be loaded (a job's reset), though it is outside the root.
  EXPECT_TRUE(core.LoadCheckpoint(At(ModelDir()), &response).ok());

  // Escapes: refused before anything is written.
  fs::create_directory_symlink(temp.path(), root / "link");
  for (const fs::path& escape : {outside, fs::path("../precious"), root / "link/precious",
                                 fs::path("job-1/../../precious")}) {
    for (bool weights_only : {false, true}) {
      absl::Status saved = core.SaveCheckpoint(At(escape, weights_only), &response);
      EXPECT_EQ(saved.code(), absl::StatusCode::kInvalidArgument) << escape;
      EXPECT_THAT(saved.message(), HasSubstr("is outside"));
    }
    EXPECT_EQ(core.LoadCheckpoint(At(escape), &response).code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(core.LoadCheckpoint(At(ModelDir().parent_path()), &response).code(),
            absl::StatusCode::kInvalidArgument);

  // Inside the root, a directory of other data is not replaced (the root itself included).
  fs::create_directories(root / "data");
  std::ofstream(root / "data/keep.txt") << "user data";
  for (const fs::path& dir : {root / "data", root}) {
    absl::Status saved = core.SaveCheckpoint(At(dir), &response);
    EXPECT_EQ(saved.code(), absl::StatusCode::kFailedPrecondition) << dir;
    EXPECT_THAT(saved.message(), HasSubstr("neither a checkpoint nor a model export"));
  }
  EXPECT_TRUE(fs::exists(root / "data/keep.txt"));
  EXPECT_TRUE(fs::exists(root / "notes.txt"));
  EXPECT_TRUE(fs::exists(outside / "keep.txt"));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(outside)) ++entries;
  EXPECT_EQ(entries, 1);  // no staging directory or checkpoint appeared beside it
  for (const auto& e : fs::directory_iterator(root)) {
    EXPECT_THAT(e.path().filename().string(), ::testing::Not(HasSubstr("staging"))) << e.path();
  }
}

}  // namespace
}  // namespace rlhf::actor
