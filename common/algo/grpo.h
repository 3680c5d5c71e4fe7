#pragma once

// Critic-free policy gradients with sequence rewards: GRPO (Shao et al. 2024, as TRL 0.24
// GRPOTrainer), RLOO (Ahmadian et al. 2024, as TRL 0.24 RLOOTrainer) and REINFORCE++
// (Hu 2025, as OpenRLHF advantage_estimator="reinforce").
// Rewards are [N] with N = num_prompts * group_size, the group_size completions of a
// prompt contiguous (TRL's repeat_interleave layout). Token tensors are [N, T] with mask.

#include <cstdint>
#include <optional>
#include <utility>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/algo/masked.h"

namespace rlhf::algo {

enum class RewardScaling {
  kGroup,  // divide by the group's std (TRL scale_rewards="group", default)
  kBatch,  // divide by the whole batch's std (TRL "batch", PPO Lite)
  kNone,   // no scaling (TRL "none", Dr. GRPO)
};

struct GroupAdvantages {
  torch::Tensor advantages;         // [N] (r - group mean) / (std + 1e-4), or unscaled
  torch::Tensor group_mean;         // [N] the mean of each sample's group
  torch::Tensor std;                // [N] unbiased std used (group std for kNone too)
  torch::Tensor zero_std_fraction;  // scalar: fraction of samples whose std is ~0
};

// TRL GRPOTrainer._generate_and_score_completions: A = r - mean_group(r), then / (std +
// 1e-4) unless kNone; std is torch's unbiased std (group or batch). group_size >= 2 (TRL
// requires it; a std of one sample is NaN). A group of identical rewards gets A = 0.
absl::StatusOr<GroupAdvantages> GrpoAdvantages(const torch::Tensor& rewards, int64_t group_size,
                                               RewardScaling scaling = RewardScaling::kGroup);

enum class GrpoLossType {
  kGrpo,    // per-sequence token mean, then batch mean (original GRPO)
  kBnpo,    // token mean over the local batch
  kDrGrpo,  // sum / (N * max_completion_length) (Dr. GRPO)
  kDapo,    // sum / num_items_in_batch (TRL 0.24 default; tokens in the accumulated batch)
};

enum class ImportanceSampling {
  kToken,     // ratio per token (GRPO)
  kSequence,  // exp(mean_t log ratio) per sequence (GSPO; TRL importance_sampling_level)
};

enum class PolicyLossKind {
  kClip,   // -min(c1 A, c2 A), the PPO clipped surrogate
  kCispo,  // -sg(min(c1, epsilon_high)) A logprob (MiniMax-M1 CISPO; TRL loss_type="cispo")
};

struct GrpoLossOptions {
  GrpoLossType loss_type = GrpoLossType::kDapo;
  double beta = 0.0;          // KL coefficient (k3 to the reference); TRL default 0
  double epsilon_low = 0.2;   // TRL epsilon
  double epsilon_high = 0.2;  // TRL epsilon_high (DAPO: 0.28)
  std::optional<double> delta =
      std::nullopt;  // two-sided clip: unclipped ratio capped at delta (INTELLECT-2)
  ImportanceSampling importance_sampling = ImportanceSampling::kToken;
  // kCispo: epsilon_high is the cap on the weight itself (TRL), epsilon_low and delta unused.
  PolicyLossKind policy_loss = PolicyLossKind::kClip;
  int64_t max_completion_length = 0;  // kDrGrpo; <= 0: T
  std::optional<double> num_items_in_batch =
      std::nullopt;  // kDapo; nullopt: this batch's token count
};

struct GrpoLossInputs {
  torch::Tensor logprobs;           // [N, T] current policy, differentiable
  torch::Tensor old_logprobs = {};  // [N, T]; undefined: logprobs.detach() (one update per batch)
  torch::Tensor ref_logprobs = {};  // [N, T]; needed when beta != 0
  torch::Tensor advantages;         // [N]
  torch::Tensor mask;               // [N, T] completion mask
  // [N, T] truncated importance-sampling weights (TruncatedIsWeights), multiplying the
  // policy term (not the KL); undefined: 1.
  torch::Tensor is_weights = {};
};

struct GrpoLossResult {
  torch::Tensor loss;            // scalar, differentiable
  torch::Tensor per_token_loss;  // [N, T], 0 on padding
  torch::Tensor mean_kl;         // detached token-mean k3 (0 if beta == 0)
  torch::Tensor clip_ratio_low, clip_ratio_high, clip_ratio_region;  // detached token means
};

// TRL 0.24 GRPOTrainer._compute_loss: l_t = -min(c1 A, c2 A) w_t + beta k3_t with
// c1 = exp(log ratio) (capped at delta), c2 = clip(exp(log ratio), 1 - eps_low, 1 + eps_high),
// w_t the TIS weight (1 without), k3_t = exp(ref - lp) - (ref - lp) - 1; aggregated by
// loss_type (TRL then divides by the gradient-accumulation steps for grpo/bnpo/dr_grpo: the
// caller's business). CISPO (TRL >= 0.25 loss_type="cispo") replaces the first term with
// -sg(min(c1, eps_high)) A lp_t; its clip ratios count [c1 > eps_high and A > 0].
absl::StatusOr<GrpoLossResult> GrpoLoss(const GrpoLossInputs& inputs,
                                        const GrpoLossOptions& options = {});

struct RlooAdvantageOptions {
  double beta = 0.05;                 // TRL RLOOConfig.beta: rewards -= beta * sequence KL
  bool normalize_advantages = false;  // (A - mean) / (std + 1e-4)
  std::optional<std::pair<double, double>> reward_clip = std::nullopt;  // TRL reward_clip_range
};

// TRL 0.24 RLOOTrainer: r = clip(r); r -= beta * kl (kl [N] = sum_t (old_lp - ref_lp) over
// the mask, undefined = 0); baseline_i = (sum_group r - r_i) / (k - 1); A = r - baseline;
// optional batch normalisation. group_size >= 2.
absl::StatusOr<torch::Tensor> RlooAdvantages(const torch::Tensor& rewards, int64_t group_size,
                                             const torch::Tensor& sequence_kl = {},
                                             const RlooAdvantageOptions& options = {});

struct RlooLossResult {
  torch::Tensor loss;                                                // scalar, differentiable
  torch::Tensor clip_ratio_low, clip_ratio_high, clip_ratio_region;  // detached sequence means
};

// TRL 0.24 RLOOTrainer._compute_loss: sequence-level ratio exp(sum_t lp - sum_t old_lp) over
// the mask, loss = mean_n -min(ratio A, clip(ratio, 1 - low, 1 + high) A).
absl::StatusOr<RlooLossResult> RlooLoss(const torch::Tensor& logprobs,
                                        const torch::Tensor& old_logprobs,
                                        const torch::Tensor& advantages, const torch::Tensor& mask,
                                        double epsilon_low = 0.2, double epsilon_high = 0.2);

struct ReinforcePlusPlusResult {
  torch::Tensor returns;     // [N, T] discounted reward-to-go, 0 on padding
  torch::Tensor advantages;  // [N, T] batch-whitened returns, 0 on padding
};

// OpenRLHF "reinforce": rewards [N, T] are the KL-penalised per-token rewards of
// ComputePpoRewards; returns_t = r_t + gamma returns_{t+1} over the mask; advantages =
// (returns - mean) * rsqrt(max(var, 1e-8)) with the biased variance over all real tokens.
absl::StatusOr<ReinforcePlusPlusResult> ReinforcePlusPlusAdvantages(const torch::Tensor& rewards,
                                                                    const torch::Tensor& mask,
                                                                    double gamma = 1.0);

}  // namespace rlhf::algo
