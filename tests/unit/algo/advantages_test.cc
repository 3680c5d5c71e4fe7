// ComputeAdvantages (the coordinator's advantage step) equals the composition of the
// functions tests/golden checks against TRL/OpenRLHF, bitwise, for each estimator; a
// hand-worked GRPO/RLOO case; and bad input is refused by name.

#include "common/algo/advantages.h"

#include <gtest/gtest.h>

#include "common/algo/grpo.h"
#include "common/algo/ppo.h"
#include "tests/unit/algo/test_util.h"

namespace rlhf::algo {
namespace {

using testing::Unwrap;

struct Batch {
  AdvantageInputs inputs;
  torch::Tensor mask;
};

// 4 prompts x 2 samples, right-padded responses of 0..6 tokens.
Batch MakeBatch() {
  torch::manual_seed(7);
  const int64_t n = 8, t = 6;
  const std::vector<int64_t> lengths = {6, 3, 0, 5, 1, 6, 2, 4};
  torch::Tensor mask = torch::zeros({n, t});
  for (int64_t i = 0; i < n; ++i) mask[i].narrow(0, 0, lengths[i]).fill_(1.0);
  AdvantageInputs in;
  in.logprobs = (torch::randn({n, t}) * 0.5 - 1.5) * mask;
  in.ref_logprobs = (in.logprobs + torch::randn({n, t}) * 0.1) * mask;
  in.values = torch::randn({n, t}) * mask;
  in.scores = torch::randn({n});
  in.has_eos = torch::tensor({true, false, true, true, false, true, true, false});
  in.mask = mask;
  return {in, mask};
}

TEST(AdvantagesTest, GaeIsRewardsThenGaeThenWhitening) {
  Batch b = MakeBatch();
  AdvantageOptions o{.estimator = AdvantageEstimator::kGae,
                     .kl_coef = 0.07,
                     .kl_estimator = KlEstimator::kK3,
                     .gamma = 0.97,
                     .lambda = 0.9,
                     .whiten = true};
  AdvantageResult r = Unwrap(ComputeAdvantages(b.inputs, o));
  PpoRewards shaped = Unwrap(
      ComputePpoRewards(b.inputs.logprobs, b.inputs.ref_logprobs, b.inputs.scores, b.mask,
                        b.inputs.has_eos, {.kl_coef = 0.07, .kl_estimator = KlEstimator::kK3}));
  GaeResult gae = Unwrap(ComputeGae(shaped.rewards, b.inputs.values, b.mask, 0.97, 0.9));
  EXPECT_TRUE(torch::equal(r.advantages, Unwrap(WhitenAdvantages(gae.advantages, b.mask))));
  EXPECT_TRUE(torch::equal(r.returns, gae.returns));
  EXPECT_TRUE(torch::equal(r.kl, shaped.kl));
  EXPECT_TRUE(torch::equal(r.non_score_rewards, shaped.non_score_rewards));
  o.whiten = false;
  EXPECT_TRUE(torch::equal(Unwrap(ComputeAdvantages(b.inputs, o)).advantages, gae.advantages));
  b.inputs.values = torch::Tensor();
  EXPECT_EQ(ComputeAdvantages(b.inputs, o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(AdvantagesTest, ReinforcePlusPlusTakesTheKlPenalisedRewards) {
  Batch b = MakeBatch();
  AdvantageOptions o{
      .estimator = AdvantageEstimator::kReinforcePlusPlus, .kl_coef = 0.05, .gamma = 0.9};
  PpoRewards shaped =
      Unwrap(ComputePpoRewards(b.inputs.logprobs, b.inputs.ref_logprobs, b.inputs.scores, b.mask,
                               b.inputs.has_eos, {.kl_coef = 0.05}));
  EXPECT_TRUE(
      torch::equal(Unwrap(ComputeAdvantages(b.inputs, o)).advantages,
                   Unwrap(ReinforcePlusPlusAdvantages(shaped.rewards, b.mask, 0.9)).advantages));
}

// On-policy distillation: with no reward, each token's advantage is -beta times its own
// reverse-KL estimate to the teacher (k1: log pi - log teacher), undiscounted, unwhitened.
TEST(AdvantagesTest, PerTokenIsMinusBetaTimesEachTokensReverseKl) {
  Batch b = MakeBatch();
  b.inputs.scores = torch::zeros({8});
  AdvantageOptions o{.estimator = AdvantageEstimator::kPerToken, .kl_coef = 1.0};
  const AdvantageResult result = Unwrap(ComputeAdvantages(b.inputs, o));
  const torch::Tensor expected = -(b.inputs.logprobs - b.inputs.ref_logprobs) * b.mask;
  EXPECT_TRUE(torch::allclose(result.advantages, expected, 0, 1e-7));
  EXPECT_TRUE(torch::allclose(result.kl, (b.inputs.logprobs - b.inputs.ref_logprobs) * b.mask));
  EXPECT_EQ(result.advantages.masked_select(b.mask == 0).abs().sum().item<double>(), 0.0);
}

// GRPO: A = (r - group mean) / (group std + 1e-4) on every token of the row, no KL in the
// rewards (GRPO keeps its KL in the loss). Rows 0-1: scores 1 and 3 -> mean 2, std sqrt(2).
TEST(AdvantagesTest, GroupAdvantagesAreBroadcastOverTheTokens) {
  Batch b = MakeBatch();
  b.inputs.scores = torch::tensor({1.0f, 3.0f, 2.0f, 2.0f, 0.0f, 4.0f, -1.0f, 1.0f});
  AdvantageOptions o{.estimator = AdvantageEstimator::kGroup, .kl_coef = 0.5, .group_size = 2};
  AdvantageResult r = Unwrap(ComputeAdvantages(b.inputs, o));
  const double a = 1.0 / (std::sqrt(2.0) + 1e-4);
  EXPECT_NEAR(r.advantages[0][0].item<double>(), -a, 1e-6);
  EXPECT_NEAR(r.advantages[1][2].item<double>(), a, 1e-6);
  EXPECT_EQ(r.advantages[1][3].item<double>(), 0.0);           // padding
  EXPECT_EQ(r.advantages[2].abs().sum().item<double>(), 0.0);  // identical rewards, and empty
  EXPECT_EQ(r.non_score_rewards.abs().sum().item<double>(), 0.0);
  o.group_size = 3;  // 8 rows are not groups of 3
  EXPECT_FALSE(ComputeAdvantages(b.inputs, o).ok());
}

// RLOO: r_i - beta KL_i minus the mean of the other samples of the prompt, per row.
TEST(AdvantagesTest, LeaveOneOutSubtractsTheSequenceKlThenTheBaseline) {
  Batch b = MakeBatch();
  AdvantageOptions o{
      .estimator = AdvantageEstimator::kLeaveOneOut, .kl_coef = 0.1, .group_size = 2};
  AdvantageResult r = Unwrap(ComputeAdvantages(b.inputs, o));
  const torch::Tensor penalised = b.inputs.scores - 0.1 * r.kl.sum(1);
  for (int64_t i = 0; i < 8; ++i) {
    const double expected =
        (penalised[i] - penalised[i ^ 1]).item<double>();  // k = 2: the other sample
    if (b.mask[i].sum().item<double>() > 0) {
      EXPECT_NEAR(r.advantages[i][0].item<double>(), expected, 1e-5) << i;
    }
  }
  EXPECT_TRUE(
      torch::equal(r.kl, Unwrap(ComputePpoRewards(b.inputs.logprobs, b.inputs.ref_logprobs,
                                                  b.inputs.scores, b.mask, b.inputs.has_eos, {}))
                             .kl));
}

}  // namespace
}  // namespace rlhf::algo
