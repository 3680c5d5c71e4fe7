// Checkpoint manifests: a written checkpoint verifies; a truncated, overwritten, missing
// or extra-damaged file is DataLoss naming it; no manifest is NotFound (older checkpoints).

#include "common/io/checkpoint_manifest.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/testing/temp_dir.h"

namespace rlhf::io {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

void Write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

fs::path MakeCheckpoint(const fs::path& root) {
  const fs::path dir = root / "iter-000003";
  Write(dir / "coordinator_state.json", "{\"iteration\": 3}\n");
  Write(dir / "policy" / "model.safetensors", std::string(100000, 'w'));
  Write(dir / "policy" / "optimizer.safetensors", std::string(5000, 'o'));
  EXPECT_TRUE(WriteCheckpointManifest(dir).ok());
  return dir;
}

TEST(CheckpointManifestTest, AWrittenCheckpointVerifies) {
  test_support::TempDir root;
  const fs::path dir = MakeCheckpoint(root.path());
  EXPECT_TRUE(VerifyCheckpointManifest(dir).ok());
  std::ifstream manifest(dir / kManifestFile);
  std::string text((std::istreambuf_iterator<char>(manifest)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("policy/model.safetensors"));
  EXPECT_THAT(text, HasSubstr("sha256"));
}

TEST(CheckpointManifestTest, DamageIsFoundAndNamed) {
  test_support::TempDir root;
  const fs::path dir = MakeCheckpoint(root.path());
  const fs::path weights = dir / "policy" / "model.safetensors";
  {  // same size, 4 KiB of 0xFF in the middle
    std::fstream f(weights, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(40000);
    f << std::string(4096, '\xff');
  }
  absl::Status flipped = VerifyCheckpointManifest(dir);
  EXPECT_EQ(flipped.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(flipped.message(), HasSubstr("model.safetensors"));
  EXPECT_THAT(flipped.message(), HasSubstr("SHA-256"));

  fs::resize_file(dir / "policy" / "optimizer.safetensors", 100);
  Write(weights, std::string(100000, 'w'));  // weights repaired, optimizer truncated
  absl::Status truncated = VerifyCheckpointManifest(dir);
  EXPECT_EQ(truncated.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(truncated.message(), HasSubstr("optimizer.safetensors: 100 bytes"));

  fs::remove(dir / "coordinator_state.json");
  EXPECT_THAT(VerifyCheckpointManifest(dir).message(), HasSubstr("coordinator_state.json"));

  Write(dir / kManifestFile, "{not json");
  EXPECT_EQ(VerifyCheckpointManifest(dir).code(), absl::StatusCode::kDataLoss);
  fs::remove(dir / kManifestFile);
  EXPECT_EQ(VerifyCheckpointManifest(dir).code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace rlhf::io
