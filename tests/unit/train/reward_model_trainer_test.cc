// PolicyTrainer as a reward-model trainer (Bradley-Terry on a sequence classifier), and
// LoadCheckpoint of a plain Hugging Face directory (reset to initial weights).

#include <gtest/gtest.h>

#include "common/model/loader.h"
#include "tests/unit/testing/temp_dir.h"
#include "tests/unit/train/test_util.h"

namespace rlhf::train {
namespace {

using testing::ConfigFor;
using testing::ModelDir;
using testing::RandomBatch;

TEST(RewardModelTrainerTest, LearnsToPreferChosenAndSavesAClassifier) {
  TrainerOptions options;
  options.optimizer.learning_rate = 3e-3;
  auto trainer = PolicyTrainer::LoadRewardModel(ModelDir("gpt2"), options);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ASSERT_TRUE((*trainer)->is_reward_model());
  // Chosen responses repeat token 7, rejected ones token 9: learnable from the last token.
  PreferenceInputs inputs;
  inputs.chosen = RandomBatch(8, 100, 1);
  inputs.rejected = inputs.chosen;
  for (auto& r : inputs.chosen.responses) r.push_back(7);
  for (auto& r : inputs.rejected.responses) r.push_back(9);
  const AlgorithmConfig config =
      ConfigFor("reward_model", [](AlgorithmConfig& c) { c.num_minibatches = 2; });
  double first_loss = 0, last_loss = 0, last_accuracy = 0;
  for (int step = 0; step < 15; ++step) {
    auto stats = (*trainer)->TrainPreference(inputs, config);
    ASSERT_TRUE(stats.ok()) << stats.status();
    if (step == 0) first_loss = stats->at("loss");
    last_loss = stats->at("loss");
    last_accuracy = stats->at("reward_accuracy");
  }
  EXPECT_LT(last_loss, first_loss * 0.5);
  EXPECT_EQ(last_accuracy, 1.0);
  EXPECT_EQ((*trainer)->policy_version(), 30);

  // Policy steps are refused with a clear error.
  auto evaluated = (*trainer)->Evaluate(inputs.chosen);
  EXPECT_EQ(evaluated.status().code(), absl::StatusCode::kFailedPrecondition);
  const AlgorithmConfig dpo = ConfigFor("dpo");
  EXPECT_EQ((*trainer)->TrainPreference(inputs, dpo).status().code(),
            absl::StatusCode::kFailedPrecondition);

  test_support::TempDir dir("reward_model_trainer");
  ASSERT_TRUE((*trainer)->SaveCheckpoint(dir.path() / "rm").ok());
  auto loaded = model::LoadSequenceClassifier(dir.path() / "rm");
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto reloaded = PolicyTrainer::LoadRewardModel(ModelDir("gpt2"), options);
  ASSERT_TRUE(reloaded.ok());
  ASSERT_TRUE((*reloaded)->LoadCheckpoint(dir.path() / "rm").ok());
  EXPECT_EQ((*reloaded)->policy_version(), 30);
}

TEST(RewardModelTrainerTest, LoadCheckpointOfAPlainModelDirResetsTheTrainer) {
  auto trainer = testing::LoadTrainerOrDie("gpt2", /*value_head=*/true);
  ASSERT_NE(trainer, nullptr);
  const auto before = trainer->NamedWeights(false).front().second.clone();
  SequenceBatch batch = RandomBatch(2, 100, 3);
  ASSERT_TRUE(trainer->TrainSft(batch, ConfigFor("sft")).ok());
  ASSERT_EQ(trainer->policy_version(), 1);
  ASSERT_FALSE(torch::equal(trainer->NamedWeights(false).front().second, before));
  ASSERT_TRUE(trainer->LoadCheckpoint(ModelDir("gpt2")).ok());
  EXPECT_EQ(trainer->policy_version(), 0);
  EXPECT_TRUE(torch::equal(trainer->NamedWeights(false).front().second, before));
}

}  // namespace
}  // namespace rlhf::train
