#pragma once

// Batched autoregressive generation with a preallocated KV cache: what the rollout service
// runs and what transformers' GenerationMixin.generate computes (left-padded prompts,
// position_ids from the attention mask, the same logits warpers).

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/causal_lm.h"
#include "common/model/sampling.h"

namespace rlhf::model {

enum class FinishReason { kEos, kStop, kLength };

struct GenerationOutput {
  // Per prompt: the generated tokens (the prompt excluded; a final EOS/stop id included).
  std::vector<std::vector<int64_t>> tokens;
  // Per prompt and token: log-probability of the token under the distribution it was
  // drawn from (after temperature/top-k/top-p; for greedy decoding, the model's own).
  std::vector<std::vector<float>> logprobs;
  std::vector<FinishReason> finish_reasons;
};

// Generates up to params.max_new_tokens tokens for each prompt. `seeds` holds one seed per
// prompt; request b's sampling draws only from a torch::Generator seeded with seeds[b], so
// its output does not depend on which other prompts share the batch. A request finishes at
// one of the model's EOS ids (generation_config.json, else config.json), at a stop id, or
// after max_new_tokens; finished requests stop growing while the others continue.
//
// Errors (InvalidArgument): no prompts, an empty prompt, a token id outside the vocabulary,
// seeds.size() != prompts.size(), bad sampling params, or prompt + max_new_tokens longer
// than the model's context (max_position_embeddings).
//
// Costs: one prefill over the left-padded batch (over its distinct prompts only when
// adjacent prompts repeat, as a GRPO group's samples do: params.share_prompt_prefill),
// then one forward of B tokens per step;
// logits only for the last position (never B x T x V); one device-to-host copy per step.
// Runs under torch::InferenceMode. Not thread-safe for the same model.
//
// `abandoned`, when given, is polled before every decode step: once it returns true the
// generation stops (Cancelled), so a caller who gave up frees the model within one step.
absl::StatusOr<GenerationOutput> Generate(CausalLm& model,
                                          std::span<const std::vector<int64_t>> prompts,
                                          const SamplingParams& params,
                                          std::span<const uint64_t> seeds,
                                          const std::function<bool()>& abandoned = nullptr);

}  // namespace rlhf::model
