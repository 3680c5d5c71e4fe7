#pragma once
// The per-token tensors of a batch of responses in the two layouts the coordinator meets:
// flat [tokens] (the wire layout, rows concatenated) and a right-padded grid [rows, width]
// (what common/algo computes on). One conversion each way, checked sizes.

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "rlhf/v1/tensor.pb.h"

namespace rlhf::coordinator {

struct RaggedLayout {
  std::vector<int64_t> lengths;  // response tokens per row
  int64_t width = 1;             // longest row (at least 1)
  int64_t tokens = 0;            // sum of lengths

  static RaggedLayout Of(const std::vector<std::vector<int64_t>>& rows);
  int64_t rows() const { return static_cast<int64_t>(lengths.size()); }
  // [rows, width] float32: 1 on each row's tokens, 0 on padding.
  torch::Tensor Mask() const;
  // flat [tokens] -> [rows, width], zeros on padding.
  torch::Tensor ToGrid(const torch::Tensor& flat) const;
  // [rows, width] -> flat [tokens] float32, contiguous.
  torch::Tensor ToFlat(const torch::Tensor& grid) const;
};

// A flat float32 tensor decoded from `proto`; Internal naming `what` unless it holds exactly
// `expected` values (a service answered for another batch).
absl::StatusOr<torch::Tensor> FlatTensor(const v1::TensorProto& proto, int64_t expected,
                                         const char* what);

// `tensor` (float32) into `proto`.
void SetTensor(const torch::Tensor& tensor, v1::TensorProto* proto);

}  // namespace rlhf::coordinator
