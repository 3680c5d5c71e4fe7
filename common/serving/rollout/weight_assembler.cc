#include "common/serving/rollout/weight_assembler.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/rpc/tensor_codec.h"

namespace rlhf::rollout {
namespace {

std::string ShapeText(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<torch::ScalarType> WeightDtype(v1::DataType dtype) {
  auto type = rpc::TorchDtype(dtype);
  if (type.ok() && c10::isFloatingType(*type) && *type != torch::kFloat64) return type;
  return absl::InvalidArgumentError(absl::StrCat("dtype ", v1::DataType_Name(dtype),
                                                 " is not a weight dtype (F32, F16 or BF16)"));
}

}  // namespace

WeightAssembler::WeightAssembler(std::map<std::string, std::vector<int64_t>> expected,
                                 std::vector<std::string> ignored_prefixes)
    : expected_(std::move(expected)), ignored_prefixes_(std::move(ignored_prefixes)) {}

absl::Status WeightAssembler::Begin(const v1::WeightChunk& chunk) {
  const std::string& name = chunk.name();
  if (name.empty()) {
    return absl::InvalidArgumentError("chunk without a name starts a new tensor");
  }
  if (seen_[name])
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' sent twice"));
  seen_[name] = true;
  InProgress progress;
  progress.name = name;
  for (const auto& prefix : ignored_prefixes_) {
    if (name.rfind(prefix, 0) == 0) {
      progress.total_bytes = -1;  // unknown; data is dropped
      current_ = std::move(progress);
      return absl::OkStatus();
    }
  }
  auto it = expected_.find(name);
  if (it == expected_.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "' is not a parameter of the serving model"));
  }
  auto dtype = WeightDtype(chunk.dtype());
  if (!dtype.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "': ", dtype.status().message()));
  }
  const std::vector<int64_t> shape(chunk.shape().begin(), chunk.shape().end());
  if (shape != it->second) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "': shape ", ShapeText(shape),
                                                   " does not match the model's ",
                                                   ShapeText(it->second)));
  }
  progress.tensor = torch::empty(shape, torch::TensorOptions().dtype(*dtype));
  progress.total_bytes = static_cast<int64_t>(progress.tensor.nbytes());
  current_ = std::move(progress);
  return absl::OkStatus();
}

absl::Status WeightAssembler::Add(const v1::WeightChunk& chunk) {
  if (!version_.has_value()) version_ = chunk.version();
  if (chunk.version() != *version_) {
    return absl::InvalidArgumentError(absl::StrCat("chunk of '", chunk.name(), "' has version ",
                                                   chunk.version(), ", the stream's is ",
                                                   *version_));
  }
  if (current_.has_value() && !chunk.name().empty() && chunk.name() != current_->name) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", current_->name,
                                                   "' ended without last_chunk_of_tensor (next: '",
                                                   chunk.name(), "')"));
  }
  if (!current_.has_value()) {
    if (auto status = Begin(chunk); !status.ok()) return status;
  }
  InProgress& progress = *current_;
  const int64_t size = static_cast<int64_t>(chunk.data().size());
  if (progress.total_bytes >= 0) {
    if (chunk.offset() != progress.received_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", progress.name, "': chunk at byte ",
                                                     chunk.offset(), ", expected byte ",
                                                     progress.received_bytes));
    }
    if (size > progress.total_bytes - progress.received_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", progress.name, "': data runs past its ", progress.total_bytes, " bytes"));
    }
    std::memcpy(static_cast<char*>(progress.tensor.data_ptr()) + progress.received_bytes,
                chunk.data().data(), size);
  }
  progress.received_bytes += size;
  if (chunk.last_chunk_of_tensor()) {
    if (progress.total_bytes >= 0) {
      if (progress.received_bytes != progress.total_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", progress.name, "': stream ended it after ",
                         progress.received_bytes, " of ", progress.total_bytes, " bytes"));
      }
      done_.bytes += progress.total_bytes;
      done_.tensors.emplace(progress.name, std::move(progress.tensor));
    }
    current_.reset();
  }
  return absl::OkStatus();
}

absl::StatusOr<AssembledWeights> WeightAssembler::Finish() {
  if (current_.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream ended inside tensor '", current_->name, "'"));
  }
  for (const auto& [name, shape] : expected_) {
    if (done_.tensors.count(name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", name, "' missing from the stream (", done_.tensors.size(),
                       " of ", expected_.size(), " received)"));
    }
  }
  done_.version = version_.value_or(0);
  return std::move(done_);
}

}  // namespace rlhf::rollout
