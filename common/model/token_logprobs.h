#pragma once

// Training-side forward: per-token log-probabilities of the given tokens and the entropy of
// each next-token distribution, without materialising B x T x V more than one chunk at a
// time (DESIGN.md: "Log-softmax + gather over a large vocabulary in chunks"). The lm_head,
// log_softmax, gather and entropy run chunk by chunk in forward, and are recomputed chunk
// by chunk in backward (a custom autograd function), so autograd never holds a
// [tokens, vocab] activation either.

#include <cstdint>
#include <functional>
#include <utility>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/model/causal_lm.h"

namespace rlhf::model {

struct TokenLogprobsOptions {
  // Tokens (rows of B x T) per chunk; peak extra memory is about 3 x chunk x vocab floats.
  int64_t chunk_tokens = 512;
  // Logits are divided by this before the softmax (PPO/GRPO evaluate the policy at the
  // rollout's sampling temperature).
  float temperature = 1.0f;
  bool compute_entropy = true;
};

struct TokenLogprobs {
  // [B, T - 1] float32: logprobs[b, t] = log p(input_ids[b, t + 1] | input_ids[b, :t + 1]).
  torch::Tensor logprobs;
  // [B, T - 1] float32 entropy of the same distributions (zeros if not computed).
  torch::Tensor entropy;
  // [B, T] value-head outputs when the model has a value head, else undefined.
  torch::Tensor values;
};

// hidden [N, H], weight [V, H], targets [N] int64 in [0, V) -> (logprobs [N], entropy [N])
// in float32 for logits = hidden @ weight^T / temperature. Differentiable with respect to
// hidden and weight. Throws c10::Error.
std::pair<torch::Tensor, torch::Tensor> ChunkedLogprobsAndEntropy(
    const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
    const TokenLogprobsOptions& options);

// One forward of `model` over input_ids [B, T] (T >= 2) with attention_mask [B, T] (1 real,
// 0 padding, either side; undefined: no padding). Autograd records the graph unless the
// caller disabled it (use torch::InferenceMode for reference/old logprobs).
absl::StatusOr<TokenLogprobs> ComputeTokenLogprobs(CausalLm& model, const torch::Tensor& input_ids,
                                                   const torch::Tensor& attention_mask,
                                                   const TokenLogprobsOptions& options = {});

// ComputeTokenLogprobs for inference over a batch of any size: row chunks of about
// kForwardChunkTokens padded tokens (common/model/limits.h), each moved to the model's
// device, so activations stay bounded; the results come back on the CPU, concatenated
// (logprobs and entropy float32 [B, T - 1], values [B, T] when the model has a value
// head). `abandoned` (optional) is polled between chunks: true stops it (Cancelled).
absl::StatusOr<TokenLogprobs> ComputeTokenLogprobsByRows(
    CausalLm& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
    const TokenLogprobsOptions& options, const std::function<bool()>& abandoned = nullptr);

}  // namespace rlhf::model
