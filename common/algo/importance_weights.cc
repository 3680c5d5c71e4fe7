#include "common/algo/importance_weights.h"

#include "common/algo/checks.h"
#include "common/algo/masked.h"

namespace rlhf::algo {

absl::StatusOr<torch::Tensor> TruncatedIsWeights(const torch::Tensor& old_logprobs,
                                                 const torch::Tensor& rollout_logprobs,
                                                 const torch::Tensor& mask, double cap) {
  constexpr absl::string_view kFn = "TruncatedIsWeights";
  if (auto s = CheckFloat(kFn, "old_logprobs", old_logprobs, 2); !s.ok()) return s;
  if (auto s = CheckFloat(kFn, "rollout_logprobs", rollout_logprobs, 2); !s.ok()) return s;
  if (auto s =
          CheckSameShape(kFn, "rollout_logprobs", rollout_logprobs, "old_logprobs", old_logprobs);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckMask(kFn, mask, "old_logprobs", old_logprobs); !s.ok()) return s;
  if (!(cap >= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(kFn, ": cap must be >= 1, got ", cap));
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<torch::Tensor> {
    torch::NoGradGuard no_grad;
    const torch::Tensor log_ratio = MaskedZero(old_logprobs - rollout_logprobs, mask);
    return torch::exp(log_ratio).clamp_max(cap);
  });
}

}  // namespace rlhf::algo
