#include "common/serving/reference/reference_core.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/model/limits.h"
#include "common/model/token_logprobs.h"
#include "common/rpc/tensor_codec.h"
#include "common/server/sequence_batch.h"
#include "common/status/torch_status.h"

namespace rlhf::reference {

ReferenceCore::ReferenceCore(std::shared_ptr<model::CausalLm> model) : model_(std::move(model)) {
  model_->eval();
}

absl::StatusOr<torch::Tensor> ReferenceCore::LogProbs(const v1::SequenceBatch& batch,
                                                      float temperature,
                                                      const std::function<bool()>& abandoned) {
  if (!std::isfinite(temperature) || temperature < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be >= 0 (0 means 1), got ", temperature));
  }
  auto padded = server::PadSequenceBatch(batch, model_->config());
  if (!padded.ok()) return padded.status();
  if (padded->total_response_tokens == 0) return torch::zeros({0}, torch::kFloat32);

  return CatchTorchErrors("reference logprobs", [&]() -> absl::StatusOr<torch::Tensor> {
    torch::InferenceMode inference;
    model::TokenLogprobsOptions options;
    options.temperature = temperature == 0 ? 1.0f : temperature;
    options.compute_entropy = false;
    std::lock_guard<std::mutex> lock(forward_mutex_);
    const torch::Device device = model_->device();
    const int64_t rows = padded->input_ids.size(0);
    const int64_t width = padded->input_ids.size(1);
    const int64_t chunk_rows = model::ForwardChunkRows(width);
    std::vector<torch::Tensor> pieces;
    for (int64_t first = 0; first < rows; first += chunk_rows) {
      if (first > 0 && abandoned && abandoned()) {
        return absl::CancelledError(
            absl::StrCat("reference logprobs abandoned by the caller after ", first, " of ", rows,
                         " sequences"));
      }
      const int64_t count = std::min(chunk_rows, rows - first);
      auto result = model::ComputeTokenLogprobs(
          *model_, padded->input_ids.narrow(0, first, count).to(device),
          padded->attention_mask.narrow(0, first, count).to(device), options);
      if (!result.ok()) return result.status();
      const torch::Tensor logprobs = result->logprobs.to(torch::kCPU, torch::kFloat32);
      // Response token j of sequence b sits at position P_b + j, predicted at P_b + j - 1.
      for (int64_t b = 0; b < count; ++b) {
        const int64_t start = padded->prompt_lengths[first + b] - 1;
        const int64_t length = padded->response_lengths[first + b];
        if (length > 0) pieces.push_back(logprobs[b].narrow(0, start, length));
      }
    }
    return torch::cat(pieces).contiguous();
  });
}

absl::Status ReferenceCore::LogProbs(const v1::LogProbsRequest& request,
                                     v1::LogProbsResponse* response,
                                     const std::function<bool()>& abandoned) {
  auto logprobs = LogProbs(request.batch(), request.temperature(), abandoned);
  if (!logprobs.ok()) return logprobs.status();
  return rpc::TensorToProto(*logprobs, response->mutable_logprobs());
}

}  // namespace rlhf::reference
