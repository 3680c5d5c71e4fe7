#pragma once

// Bradley-Terry reward-model loss (Ouyang et al. 2022, eq. 1), as TRL 0.24
// RewardTrainer.compute_loss (trl/trainer/reward_trainer.py).

#include <optional>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

struct RewardModelLossOptions {
  // Adds coef * mean((r_chosen + r_rejected)^2) (Eisenstein et al. 2023; TRL
  // RewardConfig.center_rewards_coefficient, default None = off).
  std::optional<double> center_rewards_coefficient = std::nullopt;
};

struct RewardModelLossResult {
  torch::Tensor loss;           // scalar, differentiable
  torch::Tensor accuracy;       // detached mean of [r_chosen > r_rejected] (ties count 0)
  torch::Tensor margin;         // detached mean of r_chosen - r_rejected
  torch::Tensor chosen_mean;    // detached
  torch::Tensor rejected_mean;  // detached
};

// loss = mean(-log sigmoid(r_chosen - r_rejected - margin)) (+ centering term), with
// chosen/rejected rewards [B] (or [B, 1]) and an optional per-pair margin [B]
// (undefined = 0). log sigmoid is computed stably (softplus), finite for any finite input.
absl::StatusOr<RewardModelLossResult> RewardModelLoss(const torch::Tensor& chosen_rewards,
                                                      const torch::Tensor& rejected_rewards,
                                                      const torch::Tensor& margin = {},
                                                      const RewardModelLossOptions& options = {});

}  // namespace rlhf::algo
