#pragma once
// Request decoding shared by the frozen-model services: a SequenceBatch (prompts +
// responses as ragged TokenBatches) checked and packed into right-padded tensors.
// Thread-safe (no shared state).

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/model/config.h"
#include "rlhf/v1/scoring.pb.h"

namespace rlhf::server {

struct PaddedSequences {
  torch::Tensor input_ids;       // [B, T] int64: prompt then response, right-padded with 0
  torch::Tensor attention_mask;  // [B, T] int64: 1 on real tokens
  std::vector<int64_t> prompt_lengths;
  std::vector<int64_t> response_lengths;
  int64_t total_response_tokens = 0;
};

// InvalidArgument naming the problem: malformed offsets, prompt/response counts that
// differ, an empty batch or prompt, a token id outside [0, vocab_size), or a sequence
// longer than max_position_embeddings.
absl::StatusOr<PaddedSequences> PadSequenceBatch(const v1::SequenceBatch& batch,
                                                 const model::ModelConfig& config);

}  // namespace rlhf::server
