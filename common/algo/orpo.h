#pragma once

// ORPO: Monolithic Preference Optimization without Reference Model (Hong et al. 2024), as
// TRL 0.24 ORPOTrainer.odds_ratio_loss and get_batch_loss_metrics
// (trl/trainer/orpo_trainer.py).

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

// log(1 - exp(x)) for x <= 0, stable at both ends (Maechler 2012): log(-expm1(x)) for
// x > -ln 2, log1p(-exp(x)) otherwise. x is clamped to <= -1e-12 first, so x = 0 (p = 1)
// gives a large finite value instead of -inf. Differentiable.
torch::Tensor Log1mExp(const torch::Tensor& x);

struct OrpoOptions {
  double beta = 0.1;  // lambda in the paper (TRL ORPOConfig.beta)
};

struct OrpoInputs {
  // [B] length-averaged response logprobs (TRL get_batch_logps(average_log_prob=True)).
  torch::Tensor chosen_logps, rejected_logps;
  // Scalar NLL of the chosen responses (token-mean cross entropy, e.g. SftLossFromLogits).
  torch::Tensor chosen_nll;
};

struct OrpoLossResult {
  torch::Tensor loss;              // chosen_nll - mean(beta * log sigmoid(log_odds))
  torch::Tensor or_loss;           // -mean(beta * log sigmoid(log_odds)), differentiable
  torch::Tensor log_odds_ratio;    // detached mean(log sigmoid(log_odds)) (TRL log_odds_ratio)
  torch::Tensor log_odds_chosen;   // detached mean(log_odds) (TRL log_odds_chosen)
  torch::Tensor chosen_rewards;    // [B] detached beta * chosen_logps
  torch::Tensor rejected_rewards;  // [B] detached beta * rejected_logps
};

// log_odds = (c - r) - (log(1 - e^c) - log(1 - e^r)).
absl::StatusOr<OrpoLossResult> OrpoLoss(const OrpoInputs& inputs, const OrpoOptions& options = {});

}  // namespace rlhf::algo
