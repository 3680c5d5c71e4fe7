#pragma once

// Per-token KL estimators between the policy and the reference model, and the KL
// coefficient controllers of Ziegler et al. 2019 ("Fine-Tuning Language Models from Human
// Preferences", https://arxiv.org/abs/1909.08593).

#include <cstdint>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

// Estimators of KL(pi || ref) from a sample of pi, with log_ratio = logprobs - ref_logprobs
// (http://joschu.net/blog/kl-approx.html):
//   k1 = log_ratio                       (unbiased; TRL PPO kl_estimator="k1")
//   k2 = log_ratio^2 / 2                 (low variance, biased)
//   k3 = exp(-log_ratio) + log_ratio - 1 (unbiased, >= 0; TRL PPO "k3", TRL GRPO per_token_kl)
enum class KlEstimator { kK1, kK2, kK3 };

// Per-token estimator [B, T] from logprobs and ref_logprobs [B, T]. Where both are equal
// (including both -inf) the log ratio is 0; with `mask` given, masked-out positions are 0
// whatever they hold. `log_ratio_clamp` > 0 clamps the log ratio to [-c, c] first
// (OpenRLHF clamps at 10 for k3 stability); 0 = no clamp (TRL). Differentiable.
// Throws c10::Error on mismatched shapes.
torch::Tensor KlPenalty(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs,
                        KlEstimator estimator, const torch::Tensor& mask = {},
                        double log_ratio_clamp = 0.0);

// Interface of the KL coefficient controllers. Not thread-safe (one per training loop).
class KlController {
 public:
  virtual ~KlController() = default;
  // The current coefficient beta for rewards r_t = score - beta * KL_t.
  virtual double value() const = 0;
  // Called once per PPO iteration with the observed mean sequence KL and the number of
  // samples (episodes) the iteration consumed.
  virtual void Update(double current_kl, int64_t n_steps) = 0;
};

// A constant coefficient (TRL PPOConfig.kl_coef; OpenRLHF FixedKLController).
class FixedKlController : public KlController {
 public:
  explicit FixedKlController(double kl_coef) : value_(kl_coef) {}
  double value() const override { return value_; }
  void Update(double /*current_kl*/, int64_t /*n_steps*/) override {}

 private:
  double value_;
};

// Ziegler et al. 2019, eq. (2): e = clip(KL / target - 1, -0.2, 0.2);
// beta <- beta * (1 + e * n_steps / horizon). A transcription of TRL's
// AdaptiveKLController (trl/trainer/utils.py up to TRL 0.11; TRL 0.24 no longer ships a
// KL controller) and OpenRLHF's AdaptiveKLController.
class AdaptiveKlController : public KlController {
 public:
  // kl_coef >= 0, target > 0 and horizon > 0, else InvalidArgument.
  static absl::StatusOr<AdaptiveKlController> Create(double init_kl_coef, double target,
                                                     double horizon);
  double value() const override { return value_; }
  void Update(double current_kl, int64_t n_steps) override;

 private:
  AdaptiveKlController(double value, double target, double horizon)
      : value_(value), target_(target), horizon_(horizon) {}
  double value_;
  double target_;
  double horizon_;
};

}  // namespace rlhf::algo
