#pragma once

// PPO for RLHF (Ouyang et al. 2022; Ziegler et al. 2019): per-token KL-penalised rewards,
// GAE, advantage whitening, clipped policy and value losses, entropy bonus.
// Shapes: [B, T] over response tokens; `mask` [B, T] bool/float, 1 = real response token
// (including the EOS token when one was generated), right padding.
// Reference: TRL 0.24 PPOTrainer.train (trl/trainer/ppo_trainer.py), tests/golden.

#include <cstdint>
#include <optional>
#include <utility>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/algo/kl.h"
#include "common/algo/masked.h"

namespace rlhf::algo {

struct PpoRewardOptions {
  double kl_coef = 0.05;  // beta (TRL PPOConfig.kl_coef); use KlController::value()
  KlEstimator kl_estimator = KlEstimator::kK1;
  // Subtracted from the score of rows whose has_eos is false (TRL missing_eos_penalty).
  std::optional<double> missing_eos_penalty = std::nullopt;
  // Scores clamped to [first, second] after the penalty (OpenRLHF reward_clip_range).
  std::optional<std::pair<double, double>> score_clip = std::nullopt;
};

struct PpoRewards {
  torch::Tensor rewards;            // [B, T] -kl_coef * kl_t, + score at the last real token
  torch::Tensor kl;                 // [B, T] per-token KL estimator, 0 on padding
  torch::Tensor non_score_rewards;  // [B, T] -kl_coef * kl
  torch::Tensor scores;             // [B] after penalty and clipping
  torch::Tensor last_index;         // [B] int64 last real position, -1 for an empty row
};

// r_t = -beta * KL_t on real tokens; the sequence score is added at the last real token
// (the EOS token when present). TRL places it at sequence_lengths + 1, i.e. the EOS
// position when pad == eos, which is the same token under this mask convention; OpenRLHF
// also uses the last action-mask position. An all-padding row gets no score and all-zero
// rewards. logprobs/ref_logprobs [B, T] (may be -inf on padding), scores [B], mask [B, T],
// has_eos [B] bool (undefined: all rows ended with EOS). No autograd (rewards are data).
absl::StatusOr<PpoRewards> ComputePpoRewards(const torch::Tensor& logprobs,
                                             const torch::Tensor& ref_logprobs,
                                             const torch::Tensor& scores, const torch::Tensor& mask,
                                             const torch::Tensor& has_eos = {},
                                             const PpoRewardOptions& options = {});

struct GaeResult {
  torch::Tensor advantages;  // [B, T], 0 on padding (not whitened)
  torch::Tensor returns;     // [B, T] advantages + values, 0 on padding
};

// Generalised advantage estimation (Schulman et al. 2016) over valid tokens only:
// rewards and values are zeroed where mask == 0 (so V beyond the last real token is 0), then
// delta_t = r_t + gamma V_{t+1} - V_t, A_t = delta_t + gamma lambda A_{t+1} (A_T = 0),
// returns = A + V. TRL PPOTrainer step 6 / OpenRLHF get_advantages_and_returns. No autograd.
absl::StatusOr<GaeResult> ComputeGae(const torch::Tensor& rewards, const torch::Tensor& values,
                                     const torch::Tensor& mask, double gamma, double lambda);

// Whitened advantages, 0 on padding: MaskedWhiten(advantages, mask, shift_mean=true) with
// TRL's unbiased variance (OpenRLHF: unbiased=false). Zero variance gives 0, not NaN.
absl::StatusOr<torch::Tensor> WhitenAdvantages(const torch::Tensor& advantages,
                                               const torch::Tensor& mask, bool unbiased = true);

struct PolicyLossOptions {
  double clip_eps_low = 0.2;   // ratio clipped to [1 - low, 1 + high] (TRL cliprange)
  double clip_eps_high = 0.2;  // > low gives DAPO's clip-higher
  // Dual clip (Ye et al. 2020, OpenRLHF dual_clip): for A < 0 the loss is capped at -c * A.
  std::optional<double> dual_clip = std::nullopt;
  LossAggregation aggregation = LossAggregation::kTokenMean;  // TRL: token mean
  int64_t max_length = 0;                                     // kConstantNormalizer only
};

struct PolicyLossResult {
  torch::Tensor loss;            // scalar, differentiable
  torch::Tensor per_token_loss;  // [B, T], 0 on padding
  torch::Tensor clip_fraction;   // detached masked mean of [clipped term > unclipped term]
  torch::Tensor approx_kl;       // detached 0.5 * masked mean of (logprobs - old_logprobs)^2
};

// ratio = exp(lp - old_lp) (1 on padding, even for -inf logprobs);
// l_t = max(-A_t ratio, -A_t clip(ratio, 1 - low, 1 + high)); with dual clip c:
// l_t = min(l_t, -c A_t) where A_t < 0. Aggregated by options.aggregation.
// TRL PPOTrainer pg_loss / pg_clipfrac; approx_kl is TRL's 0.5 * mean(diff^2) but over real
// tokens only (TRL averages over padding too, where diff is 0). Inputs all [B, T].
// is_weights [B, T] (TruncatedIsWeights; undefined: 1) multiply l_t after the dual clip, as
// veRL's tis_imp_ratio does.
absl::StatusOr<PolicyLossResult> PpoPolicyLoss(const torch::Tensor& logprobs,
                                               const torch::Tensor& old_logprobs,
                                               const torch::Tensor& advantages,
                                               const torch::Tensor& mask,
                                               const PolicyLossOptions& options = {},
                                               const torch::Tensor& is_weights = {});

struct ValueLossOptions {
  std::optional<double> clip_range = 0.2;  // TRL cliprange_value; nullopt: unclipped
  LossAggregation aggregation = LossAggregation::kTokenMean;
};

struct ValueLossResult {
  torch::Tensor loss;           // scalar, differentiable w.r.t. values
  torch::Tensor clip_fraction;  // detached masked mean of [clipped loss > unclipped loss]
};

// 0.5 * agg(max((v - R)^2, (clip(v, v_old - c, v_old + c) - R)^2)), TRL PPOTrainer vf_loss.
// TRL masks it with padding_mask_p1 (one token past the response); pass that as `mask` to
// reproduce it exactly. values/old_values/returns/mask [B, T].
absl::StatusOr<ValueLossResult> PpoValueLoss(const torch::Tensor& values,
                                             const torch::Tensor& old_values,
                                             const torch::Tensor& returns,
                                             const torch::Tensor& mask,
                                             const ValueLossOptions& options = {});

struct PpoLossInputs {
  torch::Tensor logprobs, old_logprobs, advantages, mask;    // [B, T]
  torch::Tensor values = {}, old_values = {}, returns = {};  // [B, T]; undefined: no critic
  torch::Tensor value_mask = {};                             // [B, T]; undefined: mask
  torch::Tensor entropy = {};                                // [B, T]; undefined: no bonus
  torch::Tensor is_weights = {};  // [B, T] TIS weights of the policy term; undefined: 1
};

struct PpoLossOptions {
  PolicyLossOptions policy;
  ValueLossOptions value;
  double vf_coef = 0.1;       // TRL PPOConfig.vf_coef
  double entropy_coef = 0.0;  // entropy bonus
};

struct PpoLossResult {
  torch::Tensor loss;  // policy + vf_coef * value - entropy_coef * entropy (differentiable)
  torch::Tensor policy_loss, value_loss, entropy;  // detached; entropy = agg over mask
  torch::Tensor policy_clip_fraction, value_clip_fraction, approx_kl;  // detached
};

// The full PPO minibatch loss. Entropy (from EntropyFromLogits) is aggregated like the
// policy loss; the bonus is -entropy_coef times it.
absl::StatusOr<PpoLossResult> PpoLoss(const PpoLossInputs& inputs,
                                      const PpoLossOptions& options = {});

}  // namespace rlhf::algo
