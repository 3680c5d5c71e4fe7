// Hand-worked cases, guards, gradient checks and error statuses for the offline losses of
// common/algo: reward model, SFT, DPO family, KTO, ORPO, CPO/SimPO.

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "common/algo/dpo.h"
#include "common/algo/kto.h"
#include "common/algo/orpo.h"
#include "common/algo/reward_model.h"
#include "common/algo/sft.h"
#include "common/algo/simpo.h"
#include "tests/unit/algo/test_util.h"

namespace rlhf::algo {
namespace {

using testing::AllFinite;
using testing::ExpectGradientsMatch;
using testing::Unwrap;

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

torch::Tensor T(std::vector<double> v) { return torch::tensor(v, kF64); }

// r_c - r_r = [2, -1, 0] -> loss = mean(softplus(-d)) = (log(1 + e^-2) + log(1 + e) + log 2) / 3;
// accuracy 1/3 (the tie counts as wrong).
TEST(RewardModel, HandWorked) {
  auto r = Unwrap(RewardModelLoss(T({1, 0, 3}), T({-1, 1, 3})));
  const double expected =
      (std::log1p(std::exp(-2.0)) + std::log1p(std::exp(1.0)) + std::log(2.0)) / 3;
  EXPECT_NEAR(r.loss.item<double>(), expected, 1e-15);
  EXPECT_NEAR(r.accuracy.item<double>(), 1.0 / 3, 1e-15);
  // [B, 1] heads are accepted; huge margins stay finite.
  auto big = Unwrap(RewardModelLoss(T({1e4}).unsqueeze(1), T({-1e4}).unsqueeze(1)));
  EXPECT_TRUE(AllFinite(big.loss));
  auto huge = Unwrap(RewardModelLoss(T({-1e4}), T({1e4})));
  EXPECT_NEAR(huge.loss.item<double>(), 2e4, 1e-9);
}

// DPO with beta = 0.5: logits = (pc - pr) - (rc - rr) = (-1 + 3) - (-2 + 2) = 2;
// loss = -log sigmoid(1) = log(1 + e^-1); rewards 0.5 (pc - rc) = 0.5, 0.5 (pr - rr) = -0.5.
TEST(Dpo, HandWorkedSigmoidAndIpoLengths) {
  DpoInputs in{T({-1}), T({-3}), T({-2}), T({-2})};
  auto r = Unwrap(DpoLoss(in, {.beta = 0.5}));
  EXPECT_NEAR(r.loss.item<double>(), std::log1p(std::exp(-1.0)), 1e-15);
  EXPECT_NEAR(r.chosen_rewards.item<double>(), 0.5, 1e-15);
  EXPECT_NEAR(r.rejected_rewards.item<double>(), -0.5, 1e-15);
  // IPO with lengths 2 and 4: logits = (-0.5 + 0.75) - (-1 + 0.5) = 0.75; (0.75 - 1)^2.
  in.chosen_lengths = torch::tensor({2});
  in.rejected_lengths = torch::tensor({4});
  auto ipo = Unwrap(DpoLoss(in, {.loss_type = DpoLossType::kIpo, .beta = 0.5}));
  EXPECT_NEAR(ipo.loss.item<double>(), 0.0625, 1e-15);
  EXPECT_FALSE(DpoLoss(in, {.loss_type = DpoLossType::kRobust, .label_smoothing = 0.5}).ok());
}

// KTO, beta = 1: KL batch mean = mean([1, -3]) = -1 -> clamped to z0 = 0.
// desirable r = 2: 1 - sigmoid(2); undesirable r = -1: 1 - sigmoid(0 + 1).
TEST(Kto, HandWorkedClampsTheReferencePoint) {
  KtoInputs in{T({2, -1}), T({0, 0}), torch::tensor({true, false}), T({1, -3}), T({0, 0})};
  auto r = Unwrap(KtoLoss(in, {.beta = 1.0}));
  EXPECT_EQ(r.kl.item<double>(), 0.0);
  const double d = 1 - 1 / (1 + std::exp(-2.0));
  const double u = 1 - 1 / (1 + std::exp(-1.0));
  EXPECT_NEAR(r.losses[0].item<double>(), d, 1e-15);
  EXPECT_NEAR(r.losses[1].item<double>(), u, 1e-15);
  EXPECT_NEAR(r.loss.item<double>(), (d + u) / 2, 1e-15);
  // Only desirable examples, and KL disabled, both work.
  auto only =
      Unwrap(KtoLoss({T({2}), T({0}), torch::tensor({true}), {}, {}}, {.calculate_kl = false}));
  EXPECT_TRUE(AllFinite(only.loss));
  EXPECT_TRUE(torch::equal(KtoKlCompletionIndex(4), torch::tensor({3, 0, 1, 2})));
  EXPECT_FALSE(KtoLoss({T({2}), T({0}), torch::tensor({true}), T({}), T({})}).ok());
}

TEST(Orpo, Log1mExpIsStableAtBothEnds) {
  const torch::Tensor x = T({-1e-20, -1e-10, -0.5, -0.7, -1.0, -50.0, -800.0, 0.0});
  const torch::Tensor y = Log1mExp(x);
  EXPECT_TRUE(AllFinite(y));
  EXPECT_NEAR(y[1].item<double>(), std::log(1e-10), 1e-9);  // naive log1p(-exp(x)) loses this
  EXPECT_NEAR(y[2].item<double>(), std::log(1 - std::exp(-0.5)), 1e-15);
  EXPECT_NEAR(y[5].item<double>(), -std::exp(-50.0), 1e-30);
  EXPECT_EQ(y[6].item<double>(), 0.0);
  // Gradient: d/dx log(1 - e^x) = -e^x / (1 - e^x).
  ExpectGradientsMatch([](const std::vector<torch::Tensor>& v) { return Log1mExp(v[0]).sum(); },
                       {T({-1e-3, -0.3, -0.69, -0.7, -2.0, -30.0})}, 1e-5, 1e-8);
  // A chosen response with probability ~1 gives a finite loss and gradient.
  torch::Tensor c = T({-1e-30, -0.5}).requires_grad_(true);
  auto r = Unwrap(OrpoLoss({c, T({-2, -0.1}), T({1.0}).squeeze()}));
  EXPECT_TRUE(AllFinite(r.loss));
  r.loss.backward();
  EXPECT_TRUE(AllFinite(c.grad()));
}

TEST(Sft, MasksThePromptAndHandlesEmptyMasks) {
  torch::manual_seed(4);
  const torch::Tensor logits = torch::randn({2, 4, 6}, kF64);
  torch::Tensor targets = torch::randint(0, 6, {2, 4});
  const torch::Tensor mask = torch::tensor({0, 1, 1, 0, 0, 0, 1, 1}).reshape({2, 4});
  targets.masked_fill_(mask == 0, -100);  // ignored labels may be out of range
  auto r = Unwrap(SftLossFromLogits(logits, targets, mask));
  const torch::Tensor lp = torch::log_softmax(logits, -1);
  double nll = 0;
  for (auto [b, t] : {std::pair{0, 1}, {0, 2}, {1, 2}, {1, 3}}) {
    nll -= lp[b][t][targets[b][t].item<int64_t>()].item<double>();
  }
  EXPECT_NEAR(r.loss.item<double>(), nll / 4, 1e-12);
  EXPECT_EQ(r.num_tokens.item<double>(), 4);
  auto empty = Unwrap(SftLossFromLogits(logits, targets, torch::zeros({2, 4})));
  EXPECT_EQ(empty.loss.item<double>(), 0.0);
}

TEST(Gradients, OfflineLosses) {
  torch::manual_seed(5);
  const torch::Tensor rc = -torch::rand({5}, kF64) * 10, rr = -torch::rand({5}, kF64) * 10;
  const torch::Tensor lengths_c = torch::tensor({3, 5, 2, 8, 4}),
                      lengths_r = torch::tensor({6, 1, 4, 2, 7});
  for (auto type :
       {DpoLossType::kSigmoid, DpoLossType::kRobust, DpoLossType::kHinge, DpoLossType::kIpo}) {
    ExpectGradientsMatch(
        [&](const std::vector<torch::Tensor>& x) {
          return Unwrap(DpoLoss({x[0], x[1], rc, rr, lengths_c, lengths_r},
                                {.loss_type = type, .beta = 0.3, .label_smoothing = 0.1}))
              .loss;
        },
        {rc + torch::randn({5}, kF64), rr + torch::randn({5}, kF64)});
  }
  const torch::Tensor desirable = torch::tensor({true, false, true, false, false});
  ExpectGradientsMatch(
      [&](const std::vector<torch::Tensor>& x) {
        return Unwrap(KtoLoss({x[0], rc, desirable, rc + 1, rc},
                              {.beta = 0.2, .desirable_weight = 1.3, .undesirable_weight = 0.7}))
            .loss;
      },
      {rc + torch::randn({5}, kF64)});
  const torch::Tensor ac = -torch::rand({5}, kF64) * 2 - 0.01,
                      ar = -torch::rand({5}, kF64) * 2 - 0.01;
  ExpectGradientsMatch(
      [&](const std::vector<torch::Tensor>& x) {
        return Unwrap(OrpoLoss({x[0], x[1], x[2].squeeze()})).loss;
      },
      {ac, ar, T({1.3})});
  for (auto type :
       {CpoLossType::kSimpo, CpoLossType::kSigmoid, CpoLossType::kHinge, CpoLossType::kIpo}) {
    ExpectGradientsMatch(
        [&](const std::vector<torch::Tensor>& x) {
          return Unwrap(CpoLoss({x[0], x[1], x[2].squeeze()}, {.loss_type = type,
                                                               .beta = 1.5,
                                                               .label_smoothing = 0.1,
                                                               .nll_weight = 0.5}))
              .loss;
        },
        {ac, ar, T({0.9})});
  }
  ExpectGradientsMatch(
      [&](const std::vector<torch::Tensor>& x) {
        return Unwrap(RewardModelLoss(x[0], x[1], T({0.1, 0, 0.3, 0, 1}),
                                      {.center_rewards_coefficient = 0.01}))
            .loss;
      },
      {torch::randn({5}, kF64), torch::randn({5}, kF64)});
  const torch::Tensor targets = torch::randint(0, 5, {2, 3});
  const torch::Tensor mask = torch::tensor({1, 1, 0, 0, 1, 1});
  ExpectGradientsMatch(
      [&](const std::vector<torch::Tensor>& x) {
        return Unwrap(SftLossFromLogits(x[0], targets, mask.reshape({2, 3}))).loss;
      },
      {torch::randn({2, 3, 5}, kF64)});
}

TEST(Errors, OfflineLossesReportBadShapes) {
  auto dpo = DpoLoss({T({1, 2}), T({1}), T({1, 2}), T({1, 2})});
  ASSERT_FALSE(dpo.ok());
  EXPECT_NE(dpo.status().message().find("policy_rejected_logps"), std::string::npos);
  EXPECT_FALSE(RewardModelLoss(T({1, 2}), T({1, 2, 3})).ok());
  EXPECT_FALSE(OrpoLoss({T({-1}), T({-1}), T({1, 2})}).ok());
  EXPECT_FALSE(CpoLoss({T({-1}), T({-1}), {}}, {.nll_weight = 1.0}).ok());
  EXPECT_FALSE(SftLossFromLogits(torch::zeros({2, 3, 4}), torch::zeros({2, 3}, torch::kLong),
                                 torch::ones({2, 2}))
                   .ok());
  EXPECT_FALSE(
      SftLossFromLogprobs(torch::zeros({2, 3}), torch::ones({2, 3}), {.num_items_in_batch = 0.0})
          .ok());
}

}  // namespace
}  // namespace rlhf::algo
