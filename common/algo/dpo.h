#pragma once

// Direct Preference Optimization and its pairwise variants, as TRL 0.24
// DPOTrainer.dpo_loss (trl/trainer/dpo_trainer.py). Inputs are sequence logprobs [B]
// (sum over response tokens) of the chosen and rejected responses under the policy and
// the frozen reference; logits = (pi_c - pi_r) - (ref_c - ref_r).

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

enum class DpoLossType {
  // -(1-ls) log s(beta l) - ls log s(-beta l): DPO (Rafailov et al. 2023, eq. 7); with
  // label_smoothing ls > 0 conservative DPO (cDPO, Mitchell 2023).
  kSigmoid,
  // (-(1-ls) log s(beta l) + ls log s(-beta l)) / (1 - 2 ls): robust DPO (Chowdhury et al.
  // 2024), an unbiased loss under label-flip rate ls < 0.5.
  kRobust,
  // relu(1 - beta l): SLiC hinge (Zhao et al. 2023).
  kHinge,
  // (l - 1 / (2 beta))^2: IPO (Azar et al. 2023, eq. 17). TRL 0.24 feeds IPO length-averaged
  // logprobs (concatenated_forward divides by loss_mask.sum(-1) when "ipo" in loss_type, for
  // policy and reference alike), so with lengths given, all four inputs are divided by them
  // here too; without lengths the inputs are used as given (e.g. already averaged).
  // OpenRLHF's IPO uses summed logprobs: leave the lengths undefined for that.
  kIpo,
};

struct DpoOptions {
  DpoLossType loss_type = DpoLossType::kSigmoid;
  double beta = 0.1;             // TRL DPOConfig.beta
  double label_smoothing = 0.0;  // sigmoid/robust only; robust requires < 0.5
  bool reference_free = false;   // ref logratio 0 (TRL reference_free)
};

struct DpoInputs {
  torch::Tensor policy_chosen_logps, policy_rejected_logps;  // [B]
  torch::Tensor ref_chosen_logps, ref_rejected_logps;        // [B]
  torch::Tensor chosen_lengths = {}, rejected_lengths = {};  // [B] token counts; IPO only
};

struct DpoLossResult {
  torch::Tensor loss;              // mean of losses, differentiable
  torch::Tensor losses;            // [B]
  torch::Tensor chosen_rewards;    // [B] detached beta (pi_c - ref_c): implicit rewards
  torch::Tensor rejected_rewards;  // [B] detached beta (pi_r - ref_r)
  torch::Tensor reward_accuracy;   // detached mean of [chosen_rewards > rejected_rewards]
  torch::Tensor reward_margin;     // detached mean of chosen_rewards - rejected_rewards
};

// TRL reports rewards with the reference subtracted even when reference_free; so do we.
// Finite for finite inputs: log sigmoid is computed as -softplus(-x).
absl::StatusOr<DpoLossResult> DpoLoss(const DpoInputs& inputs, const DpoOptions& options = {});

}  // namespace rlhf::algo
