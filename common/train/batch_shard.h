#pragma once

// A data-parallel rank's share of a training batch: rows [rank * B / W, (rank + 1) * B / W)
// of every input, with the token-flat tensors ([N] over response tokens) cut at the same
// rows. InvalidArgument when W does not divide the row count B or a tensor's length does
// not match the batch.

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/train/policy_trainer.h"

namespace rlhf::train {

absl::StatusOr<SequenceBatch> ShardRows(const SequenceBatch& batch, int64_t rank, int64_t world);
absl::StatusOr<PolicyGradientInputs> ShardRows(const PolicyGradientInputs& inputs, int64_t rank,
                                               int64_t world);
absl::StatusOr<PreferenceInputs> ShardRows(const PreferenceInputs& inputs, int64_t rank,
                                           int64_t world);
absl::StatusOr<UnpairedInputs> ShardRows(const UnpairedInputs& inputs, int64_t rank, int64_t world);

}  // namespace rlhf::train
