#include "common/serving/reference/reference_core.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
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
    auto result = model::ComputeTokenLogprobsByRows(*model_, padded->input_ids,
                                                    padded->attention_mask, options, abandoned);
    if (!result.ok()) {
      return absl::Status(result.status().code(),
                          absl::StrCat("reference logprobs: ", result.status().message()));
    }
    // Response token j of sequence b sits at position P_b + j, predicted at P_b + j - 1.
    std::vector<torch::Tensor> pieces;
    for (size_t b = 0; b < padded->prompt_lengths.size(); ++b) {
      const int64_t start = padded->prompt_lengths[b] - 1;
      const int64_t length = padded->response_lengths[b];
      if (length > 0) pieces.push_back(result->logprobs[b].narrow(0, start, length));
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
