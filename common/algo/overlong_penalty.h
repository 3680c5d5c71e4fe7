#pragma once

// DAPO's soft overlong punishment (Yu et al. 2025, "DAPO", section 3.4; veRL
// DAPORewardManager overlong_buffer): responses that run into the last `buffer_tokens` of
// the length budget lose reward linearly with their excess, so truncated rambling is not
// rewarded like a finished answer.

#include <cstdint>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

// [N] penalties <= 0 for response lengths [N] (any numeric dtype):
//   p = min(-(length - (max_tokens - buffer_tokens)) / buffer_tokens * penalty, 0),
// i.e. 0 up to max_tokens - buffer_tokens, -penalty at max_tokens. Float64, added to the
// scores. 0 < buffer_tokens < max_tokens, penalty >= 0.
absl::StatusOr<torch::Tensor> OverlongPenalty(const torch::Tensor& lengths, int64_t max_tokens,
                                              int64_t buffer_tokens, double penalty);

}  // namespace rlhf::algo
