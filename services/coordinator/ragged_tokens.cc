#include "services/coordinator/ragged_tokens.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/rpc/tensor_codec.h"
#include "common/status/status_macros.h"

namespace rlhf::coordinator {

RaggedLayout RaggedLayout::Of(const std::vector<std::vector<int64_t>>& rows) {
  RaggedLayout layout;
  for (const auto& row : rows) {
    layout.lengths.push_back(static_cast<int64_t>(row.size()));
    layout.width = std::max<int64_t>(layout.width, static_cast<int64_t>(row.size()));
    layout.tokens += static_cast<int64_t>(row.size());
  }
  return layout;
}

torch::Tensor RaggedLayout::Mask() const {
  torch::Tensor mask = torch::zeros({rows(), width}, torch::kFloat32);
  for (int64_t row = 0; row < rows(); ++row) mask[row].narrow(0, 0, lengths[row]).fill_(1.0);
  return mask;
}

torch::Tensor RaggedLayout::ToGrid(const torch::Tensor& flat) const {
  torch::Tensor grid = torch::zeros({rows(), width}, torch::kFloat32);
  int64_t offset = 0;
  for (int64_t row = 0; row < rows(); ++row) {
    if (lengths[row] > 0) {
      grid[row].narrow(0, 0, lengths[row]).copy_(flat.narrow(0, offset, lengths[row]));
    }
    offset += lengths[row];
  }
  return grid;
}

torch::Tensor RaggedLayout::ToFlat(const torch::Tensor& grid) const {
  std::vector<torch::Tensor> parts;
  for (int64_t row = 0; row < rows(); ++row) parts.push_back(grid[row].narrow(0, 0, lengths[row]));
  return torch::cat(parts).contiguous().to(torch::kFloat32);
}

absl::StatusOr<torch::Tensor> FlatTensor(const v1::TensorProto& proto, int64_t expected,
                                         const char* what) {
  auto tensor = rpc::TensorFromProto(proto);
  if (!tensor.ok()) return WithContext(tensor.status(), what);
  if (tensor->numel() != expected) {
    return absl::InternalError(
        absl::StrCat(what, ": ", tensor->numel(), " values for ", expected, " response tokens"));
  }
  return tensor->reshape({expected}).to(torch::kFloat32);
}

void SetTensor(const torch::Tensor& tensor, v1::TensorProto* proto) {
  (void)rpc::TensorToProto(tensor.contiguous(), proto);  // F32 always encodes
}

}  // namespace rlhf::coordinator
