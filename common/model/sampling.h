#pragma once

// Next-token selection for generation: transformers' logits warpers (temperature, top-k,
// top-p, applied in that order as GenerationMixin._get_logits_processor does) and
// sampling with one seeded torch::Generator per request.

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"

namespace rlhf::model {

struct SamplingParams {
  int64_t max_new_tokens = 64;
  float temperature = 1.0f;  // 0 means greedy
  int64_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  bool greedy = false;
  std::vector<int64_t> stop_ids;  // end a request like EOS (the model's EOS ids also stop)
  // Adjacent identical prompts (the n samples of a GRPO/RLOO group) share one prefill: the
  // prompt runs once and its KV cache is copied to each sample's row. Off: every row
  // prefills its own copy (the same results up to fp32 rounding; for benchmarks).
  bool share_prompt_prefill = true;
};

// InvalidArgument for out-of-range values (negative temperature, top_p outside (0, 1], ...).
absl::Status ValidateSamplingParams(const SamplingParams& params);

bool IsGreedy(const SamplingParams& params);

// scores [B, V] float32 -> the warped scores (removed tokens are -inf):
// TemperatureLogitsWarper (scores / temperature), TopKLogitsWarper (keep scores >= the
// k-th largest), TopPLogitsWarper (drop the low tail whose cumulative probability is
// <= 1 - top_p, always keeping the most likely token).
torch::Tensor WarpLogits(torch::Tensor scores, const SamplingParams& params);

// Picks the next token of each row of logits [B, V]: argmax when greedy, else a draw from
// softmax(WarpLogits(logits)) using row b's generator only (inverse-CDF with one uniform
// per row), so a request's tokens depend on its seed and not on its batch-mates. Returns
// tokens [B] int64 and their log-probabilities [B] float32 under the distribution they
// were drawn from (for greedy: the model's unwarped distribution).
std::pair<torch::Tensor, torch::Tensor> SelectNextTokens(const torch::Tensor& logits,
                                                         const SamplingParams& params,
                                                         std::vector<at::Generator>& generators);

}  // namespace rlhf::model
