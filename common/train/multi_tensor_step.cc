#include "common/train/multi_tensor_step.h"

#include <cmath>
#include <memory>
#include <tuple>

namespace rlhf::train {

double ClipGradNorm(std::vector<torch::Tensor>& grads, double max_norm) {
  if (grads.empty()) return 0.0;
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> norms = at::_foreach_norm(grads, 2);
  const torch::Tensor total = torch::stack(norms).norm(2);
  const double norm = total.item<double>();
  // torch's clip_grad_norm_: grads *= min(1, max_norm / (norm + 1e-6)).
  if (std::isfinite(norm) && std::isfinite(max_norm) && max_norm / (norm + 1e-6) < 1.0) {
    at::_foreach_mul_(grads, max_norm / (norm + 1e-6));
  }
  return norm;
}

namespace {

// Whether every parameter with a gradient in `group` shares one device and dtype (the
// fused kernel takes one of each per call).
bool Uniform(const torch::optim::OptimizerParamGroup& group) {
  const torch::Tensor* first = nullptr;
  for (const torch::Tensor& p : group.params()) {
    if (!p.grad().defined()) continue;
    if (p.grad().scalar_type() != p.scalar_type()) return false;
    if (first == nullptr) first = &p;
    if (p.device() != first->device() || p.scalar_type() != first->scalar_type()) return false;
  }
  return true;
}

}  // namespace

void FusedAdamWStep(torch::optim::AdamW& optimizer) {
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(group.options());
    if (options.amsgrad() || !Uniform(group)) {
      optimizer.step();  // every group: the fused ones have not stepped yet
      return;
    }
  }
  for (auto& group : optimizer.param_groups()) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(group.options());
    std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs, steps;
    for (torch::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = optimizer.state()[p.unsafeGetTensorImpl()];
      if (!slot) {  // as torch::optim::AdamW::step creates it
        auto state = std::make_unique<torch::optim::AdamWParamState>();
        state->step(0);
        state->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(state);
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*slot);
      state.step(state.step() + 1);
      params.push_back(p);
      grads.push_back(p.grad());
      exp_avgs.push_back(state.exp_avg());
      exp_avg_sqs.push_back(state.exp_avg_sq());
      // The kernel reads each parameter's step count (already advanced) as a float tensor
      // on the parameter's device.
      steps.push_back(
          torch::full({}, static_cast<double>(state.step()), p.options().dtype(torch::kFloat32)));
    }
    if (params.empty()) continue;
    at::_fused_adamw_(params, grads, exp_avgs, exp_avg_sqs, /*max_exp_avg_sqs=*/{}, steps,
                      options.lr(), std::get<0>(options.betas()), std::get<1>(options.betas()),
                      options.weight_decay(), options.eps(), /*amsgrad=*/false,
                      /*maximize=*/false);
  }
}

}  // namespace rlhf::train
