#pragma once

// Truncated importance sampling (TIS) between the rollout's sampler and the trainer: the
// rollout samples with its own kernels and precision (a bf16 copy, another engine), so its
// log-probs differ from the trainer's for the same tokens; weighting each token's policy
// loss by the truncated ratio of the two corrects the gradient for that mismatch (Yao et al.
// 2025, "Your efficient RL framework secretly brings you off-policy RL training"; veRL
// tis_imp_ratio_cap, OpenRLHF, TRL vllm_importance_sampling_correction).

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

// w_t = min(exp(old_logprobs_t - rollout_logprobs_t), cap), detached, 1 where mask is 0
// (whatever the padding holds, -inf included). old_logprobs are the trainer's log-probs of
// the policy that sampled (its detached current ones for one on-policy step). All [N, T];
// cap >= 1.
absl::StatusOr<torch::Tensor> TruncatedIsWeights(const torch::Tensor& old_logprobs,
                                                 const torch::Tensor& rollout_logprobs,
                                                 const torch::Tensor& mask, double cap);

}  // namespace rlhf::algo
