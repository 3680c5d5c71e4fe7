#include "common/rpc/tensor_codec.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/model/limits.h"

namespace rlhf::rpc {

absl::StatusOr<v1::DataType> WireDtype(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return v1::DATA_TYPE_F32;
    case torch::kFloat16:
      return v1::DATA_TYPE_F16;
    case torch::kBFloat16:
      return v1::DATA_TYPE_BF16;
    case torch::kFloat64:
      return v1::DATA_TYPE_F64;
    case torch::kInt64:
      return v1::DATA_TYPE_I64;
    case torch::kInt32:
      return v1::DATA_TYPE_I32;
    case torch::kUInt8:
      return v1::DATA_TYPE_U8;
    case torch::kBool:
      return v1::DATA_TYPE_BOOL;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("tensor dtype ", c10::toString(type), " has no wire encoding"));
  }
}

absl::StatusOr<torch::ScalarType> TorchDtype(v1::DataType type) {
  switch (type) {
    case v1::DATA_TYPE_F32:
      return torch::kFloat32;
    case v1::DATA_TYPE_F16:
      return torch::kFloat16;
    case v1::DATA_TYPE_BF16:
      return torch::kBFloat16;
    case v1::DATA_TYPE_F64:
      return torch::kFloat64;
    case v1::DATA_TYPE_I64:
      return torch::kInt64;
    case v1::DATA_TYPE_I32:
      return torch::kInt32;
    case v1::DATA_TYPE_U8:
      return torch::kUInt8;
    case v1::DATA_TYPE_BOOL:
      return torch::kBool;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("TensorProto.dtype ", static_cast<int>(type), " is not supported"));
  }
}

absl::Status TensorToProto(const torch::Tensor& tensor, v1::TensorProto* proto) {
  auto wire = WireDtype(tensor.scalar_type());
  if (!wire.ok()) return wire.status();
  torch::Tensor cpu = tensor.to(torch::kCPU).contiguous();
  proto->set_dtype(*wire);
  proto->clear_shape();
  for (int64_t d : cpu.sizes()) proto->add_shape(d);
  proto->set_data(cpu.data_ptr(), cpu.nbytes());
  return absl::OkStatus();
}

absl::StatusOr<torch::Tensor> TensorFromProto(const v1::TensorProto& proto) {
  auto type = TorchDtype(proto.dtype());
  if (!type.ok()) return type.status();
  std::vector<int64_t> shape(proto.shape().begin(), proto.shape().end());
  uint64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "TensorProto.shape [", absl::StrJoin(shape, ", "), "] has a negative dimension"));
    }
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel)) {
      return absl::InvalidArgumentError("TensorProto.shape overflows the element count");
    }
  }
  uint64_t expected = 0;
  if (__builtin_mul_overflow(numel, c10::elementSize(*type), &expected)) {
    return absl::InvalidArgumentError("TensorProto.shape overflows the byte count");
  }
  if (expected != proto.data().size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("TensorProto.data holds ", proto.data().size(), " bytes but ",
                     c10::toString(*type), " [", absl::StrJoin(shape, ", "), "] needs ", expected));
  }
  torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(*type));
  if (expected > 0) std::memcpy(out.data_ptr(), proto.data().data(), expected);
  return out;
}

void TokensToProto(const std::vector<std::vector<int64_t>>& sequences, v1::TokenBatch* proto) {
  proto->clear_ids();
  proto->clear_offsets();
  proto->add_offsets(0);
  for (const auto& seq : sequences) {
    proto->mutable_ids()->Add(seq.begin(), seq.end());
    proto->add_offsets(proto->ids_size());
  }
}

absl::StatusOr<std::vector<std::vector<int64_t>>> TokensFromProto(const v1::TokenBatch& proto) {
  const auto& offsets = proto.offsets();
  if (offsets.empty() || offsets[0] != 0) {
    return absl::InvalidArgumentError("TokenBatch.offsets must start with 0");
  }
  std::vector<std::vector<int64_t>> out;
  out.reserve(offsets.size() - 1);
  for (int i = 1; i < offsets.size(); ++i) {
    if (offsets[i] < offsets[i - 1] || offsets[i] > proto.ids_size()) {
      return absl::InvalidArgumentError(absl::StrCat("TokenBatch.offsets[", i, "] = ", offsets[i],
                                                     " is out of order or past ids (",
                                                     proto.ids_size(), ")"));
    }
    out.emplace_back(proto.ids().begin() + offsets[i - 1], proto.ids().begin() + offsets[i]);
  }
  if (offsets[offsets.size() - 1] != proto.ids_size()) {
    return absl::InvalidArgumentError(absl::StrCat("TokenBatch.offsets ends at ",
                                                   offsets[offsets.size() - 1], " but ids has ",
                                                   proto.ids_size(), " entries"));
  }
  return out;
}

absl::Status CheckPaddedBatchSize(const v1::SequenceBatch& batch) {
  const auto& prompts = batch.prompts().offsets();
  const auto& responses = batch.responses().offsets();
  if (prompts.size() != responses.size() || prompts.empty()) return absl::OkStatus();
  int64_t longest = 0;
  for (int i = 1; i < prompts.size(); ++i) {
    const int64_t prompt = prompts[i] - prompts[i - 1];
    const int64_t response = responses[i] - responses[i - 1];
    // Out-of-order offsets are TokensFromProto's to report; the sum cannot overflow.
    if (prompt < 0 || response < 0 || prompt > (int64_t{1} << 62) ||
        response > (int64_t{1} << 62)) {
      return absl::OkStatus();
    }
    longest = std::max(longest, prompt + response);
  }
  return model::CheckPaddedSize(prompts.size() - 1, longest);
}

}  // namespace rlhf::rpc
