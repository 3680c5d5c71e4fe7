#pragma once

// The advantage step of an online iteration, tensors in, tensors out: what the coordinator
// computes between scoring a rollout batch and training on it. Each estimator composes
// the functions checked against TRL/OpenRLHF goldens:
//   kGae (PPO):                   ComputePpoRewards (per-token -beta KL + score at the last
//                                 token) -> ComputeGae -> optional WhitenAdvantages;
//   kReinforcePlusPlus:           ComputePpoRewards -> ReinforcePlusPlusAdvantages;
//   kGroup (GRPO):                GrpoAdvantages(scores), broadcast over the tokens (the KL
//                                 is in GRPO's loss);
//   kLeaveOneOut (RLOO):          RlooAdvantages(scores, sequence KL * beta), broadcast;
//   kPerToken (on-policy distillation): each token's own shaped reward, -beta * KL(token)
//                                 (+ the score on the last token), undiscounted, unwhitened.
// Rows are num_prompts * group_size completions, a prompt's group contiguous.

#include <cstdint>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/algo/kl.h"

namespace rlhf::algo {

enum class AdvantageEstimator { kGae, kReinforcePlusPlus, kGroup, kLeaveOneOut, kPerToken };

struct AdvantageInputs {
  torch::Tensor scores;        // [N] sequence scores (reward model or verifier)
  torch::Tensor logprobs;      // [N, T] the policy's log-probs of the sampled tokens
  torch::Tensor ref_logprobs;  // [N, T] the reference's
  torch::Tensor mask;          // [N, T] response tokens
  torch::Tensor has_eos;       // [N] bool: the completion ended with a stop token
  torch::Tensor values = {};   // [N, T] the critic's (kGae only)
};

struct AdvantageOptions {
  AdvantageEstimator estimator = AdvantageEstimator::kGae;
  double kl_coef = 0.0;  // beta; the per-token reward penalty (kGae, kReinforcePlusPlus) or
                         // RLOO's sequence-KL reward penalty (kLeaveOneOut)
  KlEstimator kl_estimator = KlEstimator::kK1;
  int64_t group_size = 1;  // kGroup, kLeaveOneOut: completions per prompt (>= 2)
  double gamma = 1.0;      // kGae, kReinforcePlusPlus
  double lambda = 0.95;    // kGae
  bool whiten = true;      // kGae
};

struct AdvantageResult {
  torch::Tensor advantages;         // [N, T], 0 on padding
  torch::Tensor returns;            // [N, T] value targets (kGae only; else undefined)
  torch::Tensor kl;                 // [N, T] per-token KL estimate to the reference
  torch::Tensor non_score_rewards;  // [N, T] -beta * kl where the rewards carry it, else 0
};

// InvalidArgument naming the tensor for shapes that disagree, a missing critic for kGae,
// or rows that are not a multiple of group_size.
absl::StatusOr<AdvantageResult> ComputeAdvantages(const AdvantageInputs& inputs,
                                                  const AdvantageOptions& options);

}  // namespace rlhf::algo
