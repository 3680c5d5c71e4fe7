#pragma once

// The optimizer step as multi-tensor kernels: gradient clipping with torch's foreach norm
// and scale (one call over every gradient), and AdamW through torch's fused kernel
// (at::_fused_adamw_: one pass over each parameter, its moments and gradient; the
// multi-tensor kernel on CUDA), instead of torch::optim::AdamW::step's dozen elementwise
// ops per parameter. At the Qwen2.5-0.5B shape that is most of the optimizer's time on a
// CPU and most of its kernel launches on a GPU (README, "GPUs, precision and model size").
//
// The AdamW state stays in the optimizer (AdamWParamState: step, exp_avg, exp_avg_sq,
// created as torch creates it), so checkpoints and the data-parallel state sync read and
// write it unchanged, and either step may follow the other.

#include <vector>

#include <torch/torch.h>

namespace rlhf::train {

// Scales `grads` in place so that their global L2 norm is at most `max_norm` (infinity:
// no clipping); returns the norm before clipping (torch::nn::utils::clip_grad_norm_).
double ClipGradNorm(std::vector<torch::Tensor>& grads, double max_norm);

// One AdamW step over the parameters of `optimizer` that have gradients, as
// torch::optim::AdamW::step computes it (within float rounding). Groups with amsgrad, or
// whose parameters differ in device or dtype, take optimizer.step() itself.
void FusedAdamWStep(torch::optim::AdamW& optimizer);

}  // namespace rlhf::train
