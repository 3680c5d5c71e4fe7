#include "common/algo/overlong_penalty.h"

#include "common/algo/checks.h"

namespace rlhf::algo {

absl::StatusOr<torch::Tensor> OverlongPenalty(const torch::Tensor& lengths, int64_t max_tokens,
                                              int64_t buffer_tokens, double penalty) {
  constexpr absl::string_view kFn = "OverlongPenalty";
  if (!lengths.defined() || lengths.dim() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(kFn, ": lengths must be [N], got ", ShapeString(lengths)));
  }
  if (!(buffer_tokens > 0 && buffer_tokens < max_tokens)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kFn, ": buffer_tokens must be in (0, ", max_tokens, "), got ", buffer_tokens));
  }
  if (!(penalty >= 0)) {
    return absl::InvalidArgumentError(absl::StrCat(kFn, ": penalty must be >= 0, got ", penalty));
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<torch::Tensor> {
    const torch::Tensor excess =
        lengths.to(torch::kFloat64) - static_cast<double>(max_tokens - buffer_tokens);
    return (-excess / static_cast<double>(buffer_tokens) * penalty).clamp_max(0.0);
  });
}

}  // namespace rlhf::algo
