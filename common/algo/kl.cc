#include "common/algo/kl.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/algo/masked.h"

namespace rlhf::algo {

torch::Tensor KlPenalty(const torch::Tensor& logprobs, const torch::Tensor& ref_logprobs,
                        KlEstimator estimator, const torch::Tensor& mask, double log_ratio_clamp) {
  TORCH_CHECK(logprobs.sizes() == ref_logprobs.sizes(), "KlPenalty: logprobs ", logprobs.sizes(),
              " vs ref_logprobs ", ref_logprobs.sizes());
  // lp == ref (also -inf == -inf, where the difference would be NaN) -> exactly 0.
  torch::Tensor log_ratio = torch::where(
      logprobs == ref_logprobs, torch::zeros({}, logprobs.options()), logprobs - ref_logprobs);
  if (log_ratio_clamp > 0) log_ratio = log_ratio.clamp(-log_ratio_clamp, log_ratio_clamp);
  torch::Tensor kl;
  switch (estimator) {
    case KlEstimator::kK1:
      kl = log_ratio;
      break;
    case KlEstimator::kK2:
      kl = 0.5 * log_ratio * log_ratio;
      break;
    case KlEstimator::kK3:
      // expm1 keeps precision for small ratios: exp(-x) - 1 + x.
      kl = torch::expm1(-log_ratio) + log_ratio;
      break;
  }
  if (mask.defined()) kl = MaskedZero(kl, mask);
  return kl;
}

absl::StatusOr<AdaptiveKlController> AdaptiveKlController::Create(double init_kl_coef,
                                                                  double target, double horizon) {
  if (!(init_kl_coef >= 0) || !std::isfinite(init_kl_coef)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "AdaptiveKlController: init_kl_coef must be finite and >= 0, got ", init_kl_coef));
  }
  if (!(target > 0) || !std::isfinite(target)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdaptiveKlController: target must be > 0, got ", target));
  }
  if (!(horizon > 0) || !std::isfinite(horizon)) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdaptiveKlController: horizon must be > 0, got ", horizon));
  }
  return AdaptiveKlController(init_kl_coef, target, horizon);
}

void AdaptiveKlController::Update(double current_kl, int64_t n_steps) {
  if (!std::isfinite(current_kl)) return;  // a NaN/inf KL must not poison the coefficient
  const double proportional_error = std::clamp(current_kl / target_ - 1.0, -0.2, 0.2);
  value_ *= 1.0 + proportional_error * static_cast<double>(n_steps) / horizon_;
}

}  // namespace rlhf::algo
