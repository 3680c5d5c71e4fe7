// Ragged batches -> padded tensors and back; algorithm config parsing.

#include "common/train/padded_batch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/train/algorithm_config.h"

namespace rlhf::train {
namespace {

using ::testing::HasSubstr;
using Rows = std::vector<std::vector<int64_t>>;

SequenceBatch Make(Rows prompts, Rows responses) {
  return SequenceBatch{std::move(prompts), std::move(responses)};
}

TEST(PaddedBatchTest, RightPadsAndMasksResponses) {
  SequenceBatch batch = Make(Rows{{5, 6}, {7}}, Rows{{8, 9, 10}, std::vector<int64_t>{}});
  auto padded = BuildPaddedBatch(batch, 20, /*pad_token_id=*/0);
  ASSERT_TRUE(padded.ok()) << padded.status();
  EXPECT_TRUE(
      torch::equal(padded->input_ids, torch::tensor({5, 6, 8, 9, 10, 7, 0, 0, 0, 0}).view({2, 5})));
  EXPECT_TRUE(torch::equal(padded->attention_mask,
                           torch::tensor({1, 1, 1, 1, 1, 1, 0, 0, 0, 0}).view({2, 5})));
  // logprob column t scores token t + 1: responses of row 0 are columns 1..3.
  EXPECT_TRUE(torch::equal(padded->response_mask,
                           torch::tensor({0.f, 1.f, 1.f, 1.f, 0.f, 0.f, 0.f, 0.f}).view({2, 4})));
  EXPECT_EQ(padded->num_response_tokens, 3);

  torch::Tensor flat = torch::tensor({1.f, 2.f, 3.f});
  auto grid = ScatterResponseTokens(flat, *padded, "x");
  ASSERT_TRUE(grid.ok());
  EXPECT_TRUE(torch::equal(GatherResponseTokens(*grid, *padded), flat));

  PaddedBatch second = SelectRows(*padded, {1});
  EXPECT_EQ(second.input_ids.size(1), 2);  // trimmed to its own length (at least 2)
}

TEST(PaddedBatchTest, BadInputsNameTheProblem) {
  auto empty_prompt = BuildPaddedBatch(Make(Rows(1), Rows{{1}}), 20);
  EXPECT_EQ(empty_prompt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty_prompt.status().message()), HasSubstr("prompt is empty"));
  auto bad_id = BuildPaddedBatch(Make(Rows{{1}}, Rows{{25}}), 20);
  EXPECT_THAT(std::string(bad_id.status().message()), HasSubstr("id 25 outside [0, 20)"));
  auto counts = BuildPaddedBatch(Make(Rows{{1}, {2}}, Rows{{3}}), 20);
  EXPECT_EQ(counts.status().code(), absl::StatusCode::kInvalidArgument);

  auto padded = BuildPaddedBatch(Make(Rows{{1}}, Rows{{2, 3}}), 20);
  ASSERT_TRUE(padded.ok());
  auto wrong = ScatterResponseTokens(torch::ones({3}), *padded, "advantages");
  EXPECT_THAT(std::string(wrong.status().message()), HasSubstr("advantages has shape [3]"));
}

// Rows x width is checked before the padded tensors are allocated (one long row would
// otherwise make every row that long).
TEST(PaddedBatchTest, AnOversizedBatchIsRefusedBeforeAllocation) {
  SequenceBatch batch;
  for (int i = 0; i < 1024; ++i) {
    batch.prompts.push_back({1});
    batch.responses.push_back({2});
  }
  batch.responses[0].assign(70000, 3);  // 1024 rows x 70001 slots > 2^26
  auto padded = BuildPaddedBatch(batch, 20);
  EXPECT_EQ(padded.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(padded.status().message()), HasSubstr("send smaller batches"));
}

TEST(AlgorithmConfigTest, DefaultsAndValidation) {
  auto ipo = AlgorithmConfigFor("ipo");
  ASSERT_TRUE(ipo.ok()) << ipo.status();
  EXPECT_EQ(ipo->algorithm, Algorithm::kDpo);
  EXPECT_EQ(ipo->dpo_loss_type, algo::DpoLossType::kIpo);
  EXPECT_DOUBLE_EQ(AlgorithmConfigFor("simpo")->beta, 2.0);
  EXPECT_DOUBLE_EQ(AlgorithmConfigFor("cdpo")->label_smoothing, 0.1);

  auto unknown = AlgorithmConfigFor("magic");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("unknown algorithm \"magic\""));

  AlgorithmConfig ppo = *AlgorithmConfigFor("ppo");
  EXPECT_TRUE(ValidateAlgorithmConfig(ppo).ok());
  ppo.ppo_epochs = 0;
  EXPECT_THAT(std::string(ValidateAlgorithmConfig(ppo).message()), HasSubstr("epochs"));
  ppo.ppo_epochs = 1;
  ppo.optimizer = OptimizerOptions{.beta2 = 1.0};
  EXPECT_THAT(std::string(ValidateAlgorithmConfig(ppo).message()), HasSubstr("adam_beta2"));
  AlgorithmConfig dpo = *AlgorithmConfigFor("dpo");
  dpo.beta = 0;
  EXPECT_THAT(std::string(ValidateAlgorithmConfig(dpo).message()), HasSubstr("beta"));
}

}  // namespace
}  // namespace rlhf::train
