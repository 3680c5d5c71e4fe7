// The multi-tensor optimizer step computes what torch's own does: FusedAdamWStep ends
// three steps where torch::optim::AdamW::step ends them (weights and moments, with weight
// decay and parameters without a gradient), and ClipGradNorm clips as
// torch::nn::utils::clip_grad_norm_.

#include <gtest/gtest.h>

#include <limits>

#include "common/train/multi_tensor_step.h"

namespace rlhf::train {
namespace {

std::vector<torch::Tensor> Params() {
  torch::manual_seed(3);
  std::vector<torch::Tensor> params;
  for (auto shape : {std::vector<int64_t>{7, 5}, {33}, {2, 3, 4}, {1}}) {
    params.push_back(torch::randn(shape).requires_grad_(true));
  }
  return params;
}

std::vector<torch::Tensor> Copy(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone().requires_grad_(true));
  return out;
}

void SetGrads(std::vector<torch::Tensor>& params, int step) {
  torch::manual_seed(100 + step);
  for (size_t i = 0; i < params.size(); ++i) {
    // The third parameter has no gradient at step 1: AdamW skips it then.
    if (i == 2 && step == 1) {
      params[i].mutable_grad() = torch::Tensor();
      continue;
    }
    params[i].mutable_grad() = torch::randn_like(params[i]) * (1.0 + step);
  }
}

double MaxDiff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  }
  return worst;
}

TEST(MultiTensorStepTest, FusedAdamWEndsWhereTorchsAdamWEnds) {
  std::vector<torch::Tensor> ours = Params(), theirs = Copy(ours), start = Copy(ours);
  auto options = torch::optim::AdamWOptions(0.05).betas({0.9, 0.95}).eps(1e-6).weight_decay(0.1);
  torch::optim::AdamW fused(ours, options), reference(theirs, options);
  for (int step = 0; step < 3; ++step) {
    SetGrads(ours, step);
    SetGrads(theirs, step);
    FusedAdamWStep(fused);
    reference.step();
  }
  EXPECT_LT(MaxDiff(ours, theirs), 1e-6);
  EXPECT_GT(MaxDiff(ours, start), 0.05);  // the steps moved the weights
  for (size_t i = 0; i < ours.size(); ++i) {
    auto& a = static_cast<torch::optim::AdamWParamState&>(
        *fused.state().at(ours[i].unsafeGetTensorImpl()));
    auto& b = static_cast<torch::optim::AdamWParamState&>(
        *reference.state().at(theirs[i].unsafeGetTensorImpl()));
    EXPECT_EQ(a.step(), b.step()) << i;
    EXPECT_EQ(a.step(), i == 2 ? 2 : 3) << i;
    EXPECT_LT((a.exp_avg() - b.exp_avg()).abs().max().item<double>(), 1e-6) << i;
    EXPECT_LT((a.exp_avg_sq() - b.exp_avg_sq()).abs().max().item<double>(), 1e-6) << i;
  }
  // Either step continues the other's state.
  SetGrads(ours, 3);
  SetGrads(theirs, 3);
  fused.step();
  FusedAdamWStep(reference);
  EXPECT_LT(MaxDiff(ours, theirs), 1e-6);
}

TEST(MultiTensorStepTest, ClipGradNormClipsAsTorchDoes) {
  for (double max_norm : {0.5, 1e9, std::numeric_limits<double>::infinity()}) {
    std::vector<torch::Tensor> ours = Params(), theirs = Copy(ours);
    SetGrads(ours, 0);
    SetGrads(theirs, 0);
    std::vector<torch::Tensor> grads;
    for (auto& p : ours) grads.push_back(p.mutable_grad());
    const double norm = ClipGradNorm(grads, max_norm);
    const double expected = torch::nn::utils::clip_grad_norm_(theirs, max_norm);
    EXPECT_NEAR(norm, expected, 1e-5 * expected) << max_norm;
    for (size_t i = 0; i < ours.size(); ++i) {
      EXPECT_LT((ours[i].grad() - theirs[i].grad()).abs().max().item<double>(), 1e-6)
          << max_norm << " " << i;
    }
    if (max_norm == 0.5) {  // clipped: the global norm is now max_norm
      double total = 0;
      for (auto& p : ours) total += p.grad().square().sum().item<double>();
      EXPECT_NEAR(std::sqrt(total), 0.5, 1e-5);
    }
  }
  std::vector<torch::Tensor> none;
  EXPECT_EQ(ClipGradNorm(none, 1.0), 0.0);
}

}  // namespace
}  // namespace rlhf::train
