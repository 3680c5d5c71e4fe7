// Hand-worked cases, NaN/inf guards, gradient checks and error statuses for the on-policy
// RL pieces of common/algo: masked reductions, KL, PPO, GRPO/RLOO/REINFORCE++, logprobs.

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "common/algo/grpo.h"
#include "common/algo/kl.h"
#include "common/algo/logprobs.h"
#include "common/algo/masked.h"
#include "common/algo/ppo.h"
#include "tests/unit/algo/test_util.h"

namespace rlhf::algo {
namespace {

using testing::AllFinite;
using testing::ExpectGradientsMatch;
using testing::Unwrap;

constexpr double kInf = std::numeric_limits<double>::infinity();
const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

torch::Tensor T(std::vector<double> v, std::vector<int64_t> shape) {
  return torch::tensor(v, kF64).reshape(shape);
}

void ExpectNear(const torch::Tensor& actual, const torch::Tensor& expected, double tol = 1e-12) {
  EXPECT_LT(testing::MaxScaledError(actual, expected), tol)
      << "actual " << actual << "\nexpected " << expected;
}

// One response of 5 real tokens and one padding slot, beta = 0.1, k1 KL, score 1.0.
//   kl = lp - ref            = [0.2, 0, -0.5, 0.1, 0]
//   r  = -0.1 kl (+1 at t=4) = [-0.02, 0, 0.05, -0.01, 1.0], 0 on padding
// GAE with gamma = 1, lambda = 0.95, V = [0.5, 0.4, 0.6, 0.7, 0.8], V_5 = 0 (padding):
//   t=4: delta = 1.0 + 0 - 0.8 = 0.2              A4 = 0.2
//   t=3: delta = -0.01 + 0.8 - 0.7 = 0.09         A3 = 0.09 + 0.95 * 0.2 = 0.28
//   t=2: delta = 0.05 + 0.7 - 0.6 = 0.15          A2 = 0.15 + 0.95 * 0.28 = 0.416
//   t=1: delta = 0 + 0.6 - 0.4 = 0.2              A1 = 0.2 + 0.95 * 0.416 = 0.5952
//   t=0: delta = -0.02 + 0.4 - 0.5 = -0.12        A0 = -0.12 + 0.95 * 0.5952 = 0.44544
//   returns = A + V = [0.94544, 0.9952, 1.016, 0.98, 1.0]
TEST(PpoHandWorked, FiveTokenRewardsAndGae) {
  const torch::Tensor lp = T({-1.0, -0.5, -2.0, -0.1, -0.3, -kInf}, {1, 6});
  const torch::Tensor ref = T({-1.2, -0.5, -1.5, -0.2, -0.3, -kInf}, {1, 6});
  const torch::Tensor mask = torch::tensor({1, 1, 1, 1, 1, 0}).reshape({1, 6}).to(torch::kBool);
  PpoRewardOptions o;
  o.kl_coef = 0.1;
  auto r = Unwrap(ComputePpoRewards(lp, ref, T({1.0}, {1}), mask, {}, o));
  ExpectNear(r.kl, T({0.2, 0, -0.5, 0.1, 0, 0}, {1, 6}));
  ExpectNear(r.rewards, T({-0.02, 0, 0.05, -0.01, 1.0, 0}, {1, 6}));
  EXPECT_EQ(r.last_index.item<int64_t>(), 4);
  const torch::Tensor values = T({0.5, 0.4, 0.6, 0.7, 0.8, 9.9}, {1, 6});
  auto g = Unwrap(ComputeGae(r.rewards, values, mask, 1.0, 0.95));
  ExpectNear(g.advantages, T({0.44544, 0.5952, 0.416, 0.28, 0.2, 0}, {1, 6}));
  ExpectNear(g.returns, T({0.94544, 0.9952, 1.016, 0.98, 1.0, 0}, {1, 6}));
}

TEST(PpoHandWorked, MissingEosPenaltyAndScoreClip) {
  const torch::Tensor lp = torch::zeros({2, 3}, kF64);
  const torch::Tensor mask = torch::tensor({1, 1, 0, 1, 1, 1}).reshape({2, 3});
  PpoRewardOptions o;
  o.missing_eos_penalty = 1.0;
  o.score_clip = std::make_pair(-1.5, 1.5);
  auto r =
      Unwrap(ComputePpoRewards(lp, lp, T({2.0, -1.0}, {2}), mask, torch::tensor({true, false}), o));
  // Row 0 ends with EOS: 2.0 clipped to 1.5; row 1 hit max length: -1 - 1 = -2 -> -1.5.
  ExpectNear(r.rewards, T({0, 1.5, 0, 0, 0, -1.5}, {2, 3}));
}

// ratio 1.5 with A = 1 is clipped to 1.2: loss -1.2; ratio 0.5 with A = -1: max(0.5, 0.8) =
// 0.8; ratio 5 with A = -1: max(5, 1.2) = 5, dual clip c = 3 caps it at 3.
TEST(PpoHandWorked, ClippedAndDualClippedPolicyLoss) {
  const torch::Tensor lp = T({std::log(1.5), std::log(0.5), std::log(5.0)}, {1, 3});
  const torch::Tensor old = torch::zeros({1, 3}, kF64);
  const torch::Tensor adv = T({1, -1, -1}, {1, 3});
  const torch::Tensor mask = torch::ones({1, 3});
  auto plain = Unwrap(PpoPolicyLoss(lp, old, adv, mask));
  ExpectNear(plain.per_token_loss, T({-1.2, 0.8, 5.0}, {1, 3}));
  ExpectNear(plain.clip_fraction, T({2.0 / 3}, {}));
  PolicyLossOptions dual;
  dual.dual_clip = 3.0;
  auto d = Unwrap(PpoPolicyLoss(lp, old, adv, mask, dual));
  ExpectNear(d.per_token_loss, T({-1.2, 0.8, 3.0}, {1, 3}));
  ExpectNear(d.loss, T({(-1.2 + 0.8 + 3.0) / 3}, {}));
}

TEST(Guards, AllPaddingRowsAndEmptyBatches) {
  const torch::Tensor lp = T({-1, -2, -kInf, -kInf, -kInf, -kInf}, {2, 3});
  const torch::Tensor mask = torch::tensor({1, 1, 0, 0, 0, 0}).reshape({2, 3}).to(torch::kBool);
  auto r = Unwrap(ComputePpoRewards(lp, lp - 0.1, T({1, 7}, {2}), mask));
  EXPECT_TRUE(AllFinite(r.rewards));
  EXPECT_EQ(r.last_index[1].item<int64_t>(), -1);
  EXPECT_EQ(r.rewards[1].abs().sum().item<double>(), 0.0);  // no score on an empty row
  auto g = Unwrap(ComputeGae(r.rewards, torch::randn({2, 3}, kF64), mask, 1.0, 0.95));
  EXPECT_TRUE(AllFinite(g.advantages) && AllFinite(g.returns));
  EXPECT_EQ(g.advantages[1].abs().sum().item<double>(), 0.0);
  // A batch with no real token at all: every statistic is 0, every gradient finite.
  const torch::Tensor none = torch::zeros({2, 3}, torch::kBool);
  EXPECT_EQ(MaskedMean(lp, none).item<double>(), 0.0);
  EXPECT_EQ(MaskedVar(lp, none).item<double>(), 0.0);
  EXPECT_TRUE(AllFinite(MaskedWhiten(lp, none)));
  EXPECT_TRUE(AllFinite(MaskedRowMean(lp, mask)));
  torch::Tensor x = lp.clone().requires_grad_(true);
  for (auto agg : {LossAggregation::kTokenMean, LossAggregation::kSequenceMean,
                   LossAggregation::kSequenceSum, LossAggregation::kConstantNormalizer}) {
    PolicyLossOptions o;
    o.aggregation = agg;
    auto loss = Unwrap(PpoPolicyLoss(x, lp.detach(), torch::ones({2, 3}, kF64), none, o));
    EXPECT_EQ(loss.loss.item<double>(), 0.0);
    auto grad = torch::autograd::grad({loss.loss}, {x})[0];
    EXPECT_TRUE(AllFinite(grad));
  }
}

TEST(Guards, ZeroVarianceAndSingleTokenWhitening) {
  const torch::Tensor mask = torch::tensor({1, 1, 1, 0}).reshape({1, 4});
  auto w = Unwrap(WhitenAdvantages(T({2, 2, 2, 5}, {1, 4}), mask));
  ExpectNear(w, torch::zeros({1, 4}, kF64));
  auto single = Unwrap(
      WhitenAdvantages(T({3, 1, 1, 1}, {1, 4}), torch::tensor({1, 0, 0, 0}).reshape({1, 4})));
  ExpectNear(single, torch::zeros({1, 4}, kF64));
  auto rpp = Unwrap(ReinforcePlusPlusAdvantages(torch::zeros({2, 4}, kF64), torch::ones({2, 4})));
  EXPECT_TRUE(AllFinite(rpp.advantages));
}

TEST(Guards, IdenticalGroupRewardsGiveZeroAdvantage) {
  const torch::Tensor rewards = T({1, 1, 1, 1, 0, 1, 0, 1}, {8});
  for (auto scaling : {RewardScaling::kGroup, RewardScaling::kBatch, RewardScaling::kNone}) {
    auto a = Unwrap(GrpoAdvantages(rewards, 4, scaling));
    EXPECT_TRUE(AllFinite(a.advantages));
    ExpectNear(a.advantages.slice(0, 0, 4), torch::zeros({4}, kF64));
  }
  EXPECT_DOUBLE_EQ(Unwrap(GrpoAdvantages(rewards, 4)).zero_std_fraction.item<double>(), 0.5);
  auto rloo = Unwrap(
      RlooAdvantages(T({2, 2, 2, 2}, {4}), 4, {}, {.beta = 0, .normalize_advantages = true}));
  ExpectNear(rloo, torch::zeros({4}, kF64));
}

TEST(Guards, MinusInfLogprobs) {
  // -inf on padding: KL, policy loss and GRPO loss stay finite, and so do their gradients.
  const torch::Tensor mask = torch::tensor({1, 1, 0, 1, 0, 0}).reshape({2, 3});
  torch::Tensor lp = T({-1, -2, -kInf, -0.5, -kInf, -kInf}, {2, 3}).requires_grad_(true);
  const torch::Tensor old = T({-1.1, -1.9, -kInf, -0.4, -kInf, -kInf}, {2, 3});
  for (auto est : {KlEstimator::kK1, KlEstimator::kK2, KlEstimator::kK3}) {
    EXPECT_TRUE(AllFinite(KlPenalty(lp, old, est, mask)));
    EXPECT_TRUE(AllFinite(KlPenalty(lp, lp, est)));  // -inf vs -inf: 0, not NaN
  }
  auto pg = Unwrap(PpoPolicyLoss(lp, old, torch::ones({2, 3}, kF64), mask));
  auto grpo = Unwrap(GrpoLoss({lp, old, old, T({1, -1}, {2}), mask}, {.beta = 0.04}));
  for (const torch::Tensor& loss : {pg.loss, grpo.loss}) {
    EXPECT_TRUE(AllFinite(loss));
    EXPECT_TRUE(AllFinite(torch::autograd::grad({loss}, {lp})[0]));
  }
  // -inf logits (a banned token): entropy and gradients finite; its own logprob is -inf.
  torch::Tensor logits = torch::randn({1, 2, 5}, kF64);
  logits.index_put_({0, 0, 3}, -kInf);
  logits.requires_grad_(true);
  auto out = Unwrap(LogprobsAndEntropyFromLogits(logits, torch::tensor({{3, 1}})));
  EXPECT_TRUE(std::isinf(out.logprobs[0][0].item<double>()));
  EXPECT_TRUE(AllFinite(out.entropy));
  (out.entropy.sum() + out.logprobs[0][1]).backward();
  EXPECT_TRUE(AllFinite(logits.grad()));
}

TEST(Kl, AdaptiveControllerClipsTheError) {
  auto ctl = Unwrap(AdaptiveKlController::Create(0.1, 6.0, 1000));
  ctl.Update(60.0, 100);  // error clipped to 0.2: 0.1 * (1 + 0.2 * 0.1) = 0.102
  EXPECT_NEAR(ctl.value(), 0.102, 1e-15);
  ctl.Update(std::nan(""), 100);  // ignored
  EXPECT_NEAR(ctl.value(), 0.102, 1e-15);
  FixedKlController fixed(0.05);
  fixed.Update(100, 100);
  EXPECT_EQ(fixed.value(), 0.05);
  EXPECT_FALSE(AdaptiveKlController::Create(0.1, 0.0, 1000).ok());
  EXPECT_FALSE(AdaptiveKlController::Create(0.1, 6.0, -1).ok());
}

TEST(Gradients, PpoLosses) {
  torch::manual_seed(0);
  const torch::Tensor old = torch::randn({3, 5}, kF64) - 1;
  const torch::Tensor adv = torch::randn({3, 5}, kF64);
  const torch::Tensor mask =
      torch::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0}).reshape({3, 5});
  const torch::Tensor old_v = torch::randn({3, 5}, kF64);
  const torch::Tensor ret = torch::randn({3, 5}, kF64);
  for (auto agg : {LossAggregation::kTokenMean, LossAggregation::kSequenceMean}) {
    ExpectGradientsMatch(
        [&](const std::vector<torch::Tensor>& x) {
          PpoLossOptions o;
          o.policy.dual_clip = 3.0;
          o.policy.aggregation = agg;
          o.entropy_coef = 0.01;
          return Unwrap(PpoLoss({x[0], old, adv, mask, x[1], old_v, ret, {}, x[2]}, o)).loss;
        },
        {old + 0.3 * torch::randn({3, 5}, kF64), old_v + 0.3 * torch::randn({3, 5}, kF64),
         torch::rand({3, 5}, kF64)});
  }
}

TEST(Gradients, GrpoAndRlooLosses) {
  torch::manual_seed(1);
  const torch::Tensor old = torch::randn({4, 5}, kF64) - 1;
  const torch::Tensor ref = old + 0.2 * torch::randn({4, 5}, kF64);
  const torch::Tensor adv = torch::randn({4}, kF64);
  const torch::Tensor mask =
      torch::tensor({1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0}).reshape({4, 5});
  for (auto level : {ImportanceSampling::kToken, ImportanceSampling::kSequence}) {
    for (auto type :
         {GrpoLossType::kGrpo, GrpoLossType::kBnpo, GrpoLossType::kDrGrpo, GrpoLossType::kDapo}) {
      ExpectGradientsMatch(
          [&](const std::vector<torch::Tensor>& x) {
            GrpoLossOptions o;
            o.loss_type = type;
            o.beta = 0.04;
            o.epsilon_high = 0.28;
            o.importance_sampling = level;
            return Unwrap(GrpoLoss({x[0], old, ref, adv, mask}, o)).loss;
          },
          {old + 0.1 * torch::randn({4, 5}, kF64)});
    }
  }
  ExpectGradientsMatch(
      [&](const std::vector<torch::Tensor>& x) {
        return Unwrap(RlooLoss(x[0], old, adv, mask)).loss;
      },
      {old + 0.05 * torch::randn({4, 5}, kF64)});
}

TEST(Gradients, LogprobsAndEntropyFromLogits) {
  torch::manual_seed(2);
  const torch::Tensor targets = torch::randint(0, 7, {2, 5});
  const torch::Tensor w1 = torch::randn({2, 5}, kF64);
  const torch::Tensor w2 = torch::randn({2, 5}, kF64);
  for (double temperature : {1.0, 0.6}) {
    for (int64_t chunk : {0, 2}) {
      ExpectGradientsMatch(
          [&](const std::vector<torch::Tensor>& x) {
            auto r =
                Unwrap(LogprobsAndEntropyFromLogits(x[0], targets, {chunk, temperature, true}));
            return (r.logprobs * w1).sum() + (r.entropy * w2).sum();
          },
          {torch::randn({2, 5, 7}, kF64) * 2});
    }
  }
  ExpectGradientsMatch(  // logprobs only, entropy only
      [&](const std::vector<torch::Tensor>& x) {
        return (Unwrap(LogprobsFromLogits(x[0], targets)) * w1).sum() +
               (Unwrap(EntropyFromLogits(x[0], 3)) * w2).sum();
      },
      {torch::randn({2, 5, 7}, kF64)});
}

TEST(Logprobs, MatchesLogSoftmaxForBf16AndNonContiguousLogits) {
  torch::manual_seed(3);
  const torch::Tensor full = torch::randn({2, 6, 11});
  const torch::Tensor logits = full.slice(1, 0, 5);  // [2, 5, 11], not viewable as [10, 11]
  const torch::Tensor targets = torch::randint(0, 11, {2, 5});
  const torch::Tensor expected =
      torch::log_softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  EXPECT_LT(testing::MaxScaledError(Unwrap(LogprobsFromLogits(logits, targets, 2)), expected),
            1e-6);
  auto bf16 = Unwrap(LogprobsAndEntropyFromLogits(logits.to(torch::kBFloat16), targets));
  EXPECT_EQ(bf16.logprobs.scalar_type(), torch::kFloat);
  const torch::Tensor lsm = torch::log_softmax(logits.to(torch::kBFloat16).to(torch::kFloat), -1);
  EXPECT_LT(testing::MaxScaledError(bf16.entropy, -(lsm.exp() * lsm).sum(-1)), 1e-5);
}

TEST(Errors, ShapeAndArgumentProblemsAreStatuses) {
  const torch::Tensor a = torch::zeros({2, 3}, kF64);
  auto bad = PpoPolicyLoss(a, torch::zeros({2, 4}, kF64), a, a);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("old_logprobs"), std::string::npos) << bad.status();
  EXPECT_FALSE(ComputeGae(a, a, torch::zeros({3, 2}), 1, 1).ok());
  EXPECT_FALSE(ComputePpoRewards(a, a, torch::zeros({3}, kF64), a).ok());
  EXPECT_FALSE(PpoPolicyLoss(a, a, a, a, {.dual_clip = 0.5}).ok());
  EXPECT_FALSE(GrpoAdvantages(torch::zeros({6}, kF64), 4).ok());
  EXPECT_FALSE(GrpoAdvantages(torch::zeros({6}, kF64), 1).ok());
  EXPECT_FALSE(GrpoLoss({a, {}, {}, torch::zeros({2}, kF64), a}, {.beta = 0.1}).ok());  // no ref
  EXPECT_FALSE(
      LogprobsFromLogits(torch::zeros({2, 3, 4}), torch::full({2, 3}, 4, torch::kLong)).ok());
  EXPECT_FALSE(LogprobsFromLogits(torch::zeros({2, 3, 4}), torch::zeros({2, 3})).ok());
  EXPECT_FALSE(PpoPolicyLoss(torch::zeros({2, 3}, torch::kLong), a, a, a).ok());
}

}  // namespace
}  // namespace rlhf::algo
