#pragma once
// The reference policy's computation, without gRPC: per-token log-probabilities of the
// response tokens under a frozen CausalLm, so `rlhf local` can call it in-process and the
// service only translates. Thread-safe: forwards are serialised on an internal mutex
// (a model runs one forward at a time).

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/model/causal_lm.h"
#include "rlhf/v1/scoring.pb.h"

namespace rlhf::reference {

class ReferenceCore {
 public:
  explicit ReferenceCore(std::shared_ptr<model::CausalLm> model);

  // F32 [total response tokens]: log p(response token | prompt, earlier response tokens),
  // flat in the order of batch.responses.ids. temperature 0 means 1. Errors
  // (InvalidArgument) name the bad field: offsets, counts, token ids, lengths.
  // Runs as row chunks of model::kForwardChunkTokens padded tokens; `abandoned`
  // (optional) is polled between them: true stops it (Cancelled).
  absl::StatusOr<torch::Tensor> LogProbs(const v1::SequenceBatch& batch, float temperature,
                                         const std::function<bool()>& abandoned = nullptr);

  // LogProbsRequest -> LogProbsResponse, for the service and in-process callers.
  absl::Status LogProbs(const v1::LogProbsRequest& request, v1::LogProbsResponse* response,
                        const std::function<bool()>& abandoned = nullptr);

  model::CausalLm& model() { return *model_; }

 private:
  std::shared_ptr<model::CausalLm> model_;
  std::mutex forward_mutex_;
};

}  // namespace rlhf::reference
