#pragma once

// SimPO (Meng et al. 2024) and the CPO family it lives in, as TRL 0.24
// CPOTrainer.cpo_loss (trl/trainer/cpo_trainer.py; alpha = 0, i.e. no AlphaPO transform).
// Reference-free: inputs are policy logprobs of chosen and rejected responses [B], length
// averaged for SimPO and IPO (TRL: average_log_prob = loss_type in ["ipo", "simpo"]) and
// summed for sigmoid/hinge CPO.

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

enum class CpoLossType {
  kSimpo,    // -(1-ls) log s(beta d - gamma) - ls log s(-(beta d - gamma)), d = c - r
  kSigmoid,  // CPO (Xu et al. 2024, eq. 3): -(1-ls) log s(beta d) - ls log s(-beta d)
  kHinge,    // relu(1 - beta d)
  kIpo,      // (d - 1 / (2 beta))^2
};

struct CpoOptions {
  CpoLossType loss_type = CpoLossType::kSimpo;
  double beta = 2.0;             // SimPO paper default; TRL CPOConfig.beta defaults to 0.1
  double simpo_gamma = 0.5;      // target reward margin gamma (TRL simpo_gamma)
  double label_smoothing = 0.0;  // sigmoid/simpo only
  // Weight of the chosen NLL term (TRL cpo_alpha, default 1.0 in CPOConfig; SimPO uses 0).
  double nll_weight = 0.0;
};

struct CpoInputs {
  torch::Tensor chosen_logps, rejected_logps;  // [B]
  torch::Tensor chosen_nll = {};               // scalar; needed when nll_weight != 0
};

struct CpoLossResult {
  torch::Tensor loss;              // mean(losses) + nll_weight * chosen_nll, differentiable
  torch::Tensor losses;            // [B]
  torch::Tensor chosen_rewards;    // [B] detached beta * chosen_logps
  torch::Tensor rejected_rewards;  // [B] detached beta * rejected_logps
  torch::Tensor reward_accuracy;   // detached mean of [chosen_rewards > rejected_rewards]
  torch::Tensor reward_margin;     // detached mean of chosen_rewards - rejected_rewards
};

// The CPO-family loss selected by options.loss_type.
absl::StatusOr<CpoLossResult> CpoLoss(const CpoInputs& inputs, const CpoOptions& options = {});

// SimPO: CpoLoss with loss_type kSimpo; implicit reward beta * avg_logp, margin gamma.
absl::StatusOr<CpoLossResult> SimpoLoss(const CpoInputs& inputs, CpoOptions options = {});

}  // namespace rlhf::algo
