// SaveCheckpoint -> LoadCheckpoint restores weights, AdamW state and policy_version exactly:
// a further step after the round trip equals the same step without it.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/model/loader.h"
#include "common/train/policy_trainer.h"
#include "tests/unit/train/test_util.h"

namespace rlhf::train {
namespace {

using testing::ConfigFor;
using testing::LoadTrainerOrDie;
using testing::RandomBatch;
using testing::TempDir;

absl::Status PpoStep(PolicyTrainer& trainer, const SequenceBatch& batch) {
  auto old = trainer.Evaluate(batch, 1.0, true);
  if (!old.ok()) return old.status();
  torch::Tensor advantages = torch::linspace(-1, 1, batch.num_response_tokens());
  auto stats = trainer.TrainPolicyGradient(
      {batch, old->logprobs, advantages, old->values + advantages, old->values, {}},
      ConfigFor("ppo", [](AlgorithmConfig& c) { c.num_minibatches = 2; }));
  return stats.status();
}

void ExpectSameWeights(const PolicyTrainer& a, const PolicyTrainer& b) {
  auto wa = a.NamedWeights(true);
  auto wb = b.NamedWeights(true);
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) {
    EXPECT_EQ(wa[i].first, wb[i].first);
    EXPECT_TRUE(torch::equal(wa[i].second, wb[i].second)) << wa[i].first;
  }
}

TEST(CheckpointTest, RoundTripRestoresWeightsOptimizerAndVersionExactly) {
  for (const std::string name : {"llama", "gpt2"}) {
    TempDir temp;
    const auto dir = temp.path() / "ckpt";
    SequenceBatch batch = RandomBatch(4, 512, 17);
    auto original = LoadTrainerOrDie(name, /*value_head=*/true);
    ASSERT_NE(original, nullptr);
    ASSERT_TRUE(PpoStep(*original, batch).ok());
    auto saved = original->SaveCheckpoint(dir);
    ASSERT_TRUE(saved.ok()) << saved;
    ASSERT_TRUE(PpoStep(*original, batch).ok());
    // Saving again over an existing checkpoint replaces it.
    auto status = original->SaveCheckpoint(dir);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_TRUE(std::filesystem::exists(dir / "model.safetensors"));
    EXPECT_TRUE(std::filesystem::exists(dir / "optimizer.safetensors"));
    EXPECT_TRUE(std::filesystem::exists(dir / "trainer_state.json"));
    EXPECT_TRUE(std::filesystem::exists(dir / "config.json"));
    // It is also a plain Hugging Face model directory.
    model::LoadOptions load;
    load.value_head = true;
    EXPECT_TRUE(model::LoadCausalLm(dir, load).ok());

    auto restored = LoadTrainerOrDie(name, /*value_head=*/true);
    ASSERT_NE(restored, nullptr);
    status = restored->LoadCheckpoint(dir);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(restored->policy_version(), 4);
    ExpectSameWeights(*original, *restored);

    ASSERT_TRUE(PpoStep(*original, batch).ok());
    ASSERT_TRUE(PpoStep(*restored, batch).ok());
    EXPECT_EQ(restored->policy_version(), original->policy_version());
    ExpectSameWeights(*original, *restored);
  }
}

TEST(CheckpointTest, BadCheckpointLeavesTrainerUnchanged) {
  TempDir temp;
  auto trainer = LoadTrainerOrDie("gpt2", /*value_head=*/true);
  ASSERT_NE(trainer, nullptr);
  EXPECT_EQ(trainer->LoadCheckpoint(temp.path() / "missing").code(), absl::StatusCode::kNotFound);

  // A checkpoint of another architecture: refused before anything changes.
  auto llama = LoadTrainerOrDie("llama", /*value_head=*/true);
  ASSERT_NE(llama, nullptr);
  auto saved = llama->SaveCheckpoint(temp.path() / "llama");
  ASSERT_TRUE(saved.ok()) << saved;
  const torch::Tensor before = trainer->NamedWeights(true)[0].second.clone();
  EXPECT_FALSE(trainer->LoadCheckpoint(temp.path() / "llama").ok());
  EXPECT_TRUE(torch::equal(trainer->NamedWeights(true)[0].second, before));

  // Truncated optimizer state.
  ASSERT_TRUE(PpoStep(*llama, RandomBatch(2, 512, 1)).ok());
  ASSERT_TRUE(llama->SaveCheckpoint(temp.path() / "llama").ok());
  std::filesystem::resize_file(temp.path() / "llama" / "optimizer.safetensors", 100);
  auto fresh = LoadTrainerOrDie("llama", /*value_head=*/true);
  EXPECT_EQ(fresh->LoadCheckpoint(temp.path() / "llama").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fresh->policy_version(), 0);
}

}  // namespace
}  // namespace rlhf::train
