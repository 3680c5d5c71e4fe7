#pragma once

// Token log-probabilities and entropies from logits that already exist ([B, T, V]), in
// chunks over T so that no second B x T x V float32 tensor is ever materialised: forward
// keeps only [B, T] results (logsumexp, entropy); backward recomputes the softmax chunk by
// chunk and writes d loss / d logits straight into the one gradient tensor autograd needs.
// (For the lm_head-fused path from hidden states see common/model/token_logprobs.h.)
//
// Matches trl.trainer.utils.selective_log_softmax and entropy_from_logits (TRL 0.24) applied
// to logits / temperature, as TRL's PPO/GRPO trainers call them. Pure functions: thread-safe.

#include <cstdint>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

struct LogprobOptions {
  // Time steps per work block (one block = up to `chunk` positions of one row b); <= 0
  // picks, on CPU, a cache-sized block (~1 MiB of float32 logits), and on an
  // accelerator a whole row. CPU blocks run in parallel on the intra-op thread pool; extra
  // memory is about 2 blocks per thread.
  int64_t chunk = 0;
  // logits / temperature before the softmax (TRL divides by temperature + 1e-7: pass that
  // value to reproduce it exactly).
  double temperature = 1.0;
  bool compute_entropy = true;
};

struct LogprobsAndEntropy {
  // [B, T]: log softmax(logits[b, t] / temperature)[targets[b, t]], float32 for half/bf16
  // logits, else the logits' dtype.
  torch::Tensor logprobs;
  // [B, T]: -sum_v p log p of the same distributions (undefined if !compute_entropy).
  torch::Tensor entropy;
};

// logits [B, T, V] (float/double/half/bf16), targets [B, T] int64 in [0, V); aligned: logits
// at t score targets at t (shift before calling). Differentiable w.r.t. logits (both outputs).
absl::StatusOr<LogprobsAndEntropy> LogprobsAndEntropyFromLogits(const torch::Tensor& logits,
                                                                const torch::Tensor& targets,
                                                                const LogprobOptions& options = {});

// Only the logprobs [B, T] (no entropy work).
absl::StatusOr<torch::Tensor> LogprobsFromLogits(const torch::Tensor& logits,
                                                 const torch::Tensor& targets, int64_t chunk = 0,
                                                 double temperature = 1.0);

// Only the entropy [B, T] of softmax(logits / temperature); differentiable.
absl::StatusOr<torch::Tensor> EntropyFromLogits(const torch::Tensor& logits, int64_t chunk = 0,
                                                double temperature = 1.0);

}  // namespace rlhf::algo
