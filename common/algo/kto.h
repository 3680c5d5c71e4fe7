#pragma once

// KTO: Kahneman-Tversky Optimization (Ethayarajh et al. 2024), as TRL 0.24
// KTOTrainer.kto_loss with loss_type="kto" (trl/trainer/kto_trainer.py).

#include <cstdint>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

struct KtoOptions {
  double beta = 0.1;                // TRL KTOConfig.beta
  double desirable_weight = 1.0;    // lambda_D
  double undesirable_weight = 1.0;  // lambda_U
  bool calculate_kl = true;         // false: reference point z0 = 0 (TRL calculate_KL)
};

struct KtoInputs {
  torch::Tensor policy_logps, ref_logps;                  // [B] summed completion logprobs
  torch::Tensor desirable;                                // [B] bool label (true = desirable)
  torch::Tensor policy_kl_logps = {}, ref_kl_logps = {};  // [B'] logprobs of mismatched pairs
};

struct KtoLossResult {
  torch::Tensor loss;     // mean over the B examples (TRL losses.nanmean()), differentiable
  torch::Tensor losses;   // [B] weighted per-example losses, in input order
  torch::Tensor rewards;  // [B] detached beta (policy - ref)
  torch::Tensor kl;       // detached reference point z0 (scalar)
  torch::Tensor chosen_reward_mean, rejected_reward_mean;  // detached (0 if none)
};

// z0 = max(0, mean(policy_kl_logps - ref_kl_logps)) detached (one process: TRL's gather
// mean is the local mean); with r = policy - ref:
//   desirable:   lambda_D (1 - sigmoid(beta (r - z0)))
//   undesirable: lambda_U (1 - sigmoid(beta (z0 - r)))
// TRL concatenates chosen then rejected; the mean is the same.
absl::StatusOr<KtoLossResult> KtoLoss(const KtoInputs& inputs, const KtoOptions& options = {});

// The mismatched pairing TRL's _get_kl_dataset uses for the KL batch: completion i goes
// with prompt (i + 1) mod B, i.e. completions rotated by one: index [B-1, 0, 1, ..., B-2]
// (int64 [B]); gather completions with it to build the KL inputs.
torch::Tensor KtoKlCompletionIndex(int64_t batch);

}  // namespace rlhf::algo
