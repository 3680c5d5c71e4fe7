#pragma once

// Ragged prompt + response token batches -> right-padded model inputs with masks, and the
// mapping between flat per-response-token tensors (the wire layout: aligned with the
// concatenated response ids) and the [B, L - 1] grid that ComputeTokenLogprobs returns.
//
// Alignment: logprobs[b, t] scores input_ids[b, t + 1], so response token j of row b
// (input position P_b + j, P_b = prompt length) lives at grid column P_b + j - 1. Every
// prompt must therefore have at least one token. Pure functions: thread-safe.

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::train {

// Sequence i is prompts[i] followed by responses[i].
struct SequenceBatch {
  std::vector<std::vector<int64_t>> prompts;
  std::vector<std::vector<int64_t>> responses;

  int64_t size() const { return static_cast<int64_t>(prompts.size()); }
  int64_t num_response_tokens() const;
};

struct PaddedBatch {
  torch::Tensor input_ids;       // [B, L] int64, right padded with pad_token_id
  torch::Tensor attention_mask;  // [B, L] int64, 1 on prompt + response tokens
  torch::Tensor response_mask;   // [B, L - 1] float32, 1 where the grid scores a response token
  std::vector<int64_t> prompt_lengths;
  std::vector<int64_t> response_lengths;
  int64_t num_response_tokens = 0;
};

// InvalidArgument (naming the row) when counts differ, a prompt is empty, a token id is
// outside [0, vocab_size), or the batch is empty. L = max(P_i + R_i), at least 2.
absl::StatusOr<PaddedBatch> BuildPaddedBatch(const SequenceBatch& batch, int64_t vocab_size,
                                             int64_t pad_token_id = 0);

// Rows `rows` of `batch` (for minibatches), trimmed to their own longest sequence.
PaddedBatch SelectRows(const PaddedBatch& batch, const std::vector<int64_t>& rows);

// grid [B, L - 1] -> flat [N] of the response tokens in row order.
torch::Tensor GatherResponseTokens(const torch::Tensor& grid, const PaddedBatch& batch);

// flat [N] -> grid [B, L - 1] float32 (0 elsewhere). InvalidArgument, naming `what`, when
// flat is not a 1-D tensor of num_response_tokens elements.
absl::StatusOr<torch::Tensor> ScatterResponseTokens(const torch::Tensor& flat,
                                                    const PaddedBatch& batch, const char* what);

}  // namespace rlhf::train
