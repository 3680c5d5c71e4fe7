#pragma once
// torch::Tensor <-> rlhf.v1.TensorProto / TokenBatch: packed bytes with dtype and
// shape, one memcpy each way. Thread-safe (no shared state).

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "rlhf/v1/scoring.pb.h"
#include "rlhf/v1/tensor.pb.h"

namespace rlhf::rpc {

// The wire dtype of a torch dtype and back. InvalidArgument for a dtype the wire
// format does not carry.
absl::StatusOr<v1::DataType> WireDtype(torch::ScalarType type);
absl::StatusOr<torch::ScalarType> TorchDtype(v1::DataType type);

// Serialises a CPU or device tensor (copied to CPU, made contiguous). Fails for
// dtypes the wire format does not carry.
absl::Status TensorToProto(const torch::Tensor& tensor, v1::TensorProto* proto);

// Builds a CPU tensor owning a copy of the bytes. Fails, naming what is wrong, on
// an unknown dtype, a negative dimension, or a byte count that does not match.
absl::StatusOr<torch::Tensor> TensorFromProto(const v1::TensorProto& proto);

// Ragged token sequences <-> TokenBatch (ids + offsets).
void TokensToProto(const std::vector<std::vector<int64_t>>& sequences, v1::TokenBatch* proto);
absl::StatusOr<std::vector<std::vector<int64_t>>> TokensFromProto(const v1::TokenBatch& proto);

// Before anything is copied out of a SequenceBatch: its rows padded to the longest
// prompt + response fit model::kMaxPaddedTokens (RESOURCE_EXHAUSTED otherwise). Offsets
// that are malformed or of different counts pass here (TokensFromProto reports them).
absl::Status CheckPaddedBatchSize(const v1::SequenceBatch& batch);

}  // namespace rlhf::rpc
