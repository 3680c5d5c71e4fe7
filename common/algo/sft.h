#pragma once

// Supervised fine-tuning loss: next-token cross-entropy over response tokens only (the
// prompt and padding are masked out), as transformers' ForCausalLMLoss / TRL SFTTrainer with
// completion_only_loss (labels -100 on the prompt), i.e.
// F.cross_entropy(logits, labels, ignore_index=-100).

#include <cstdint>
#include <optional>

#include <torch/torch.h>

#include "absl/status/statusor.h"

namespace rlhf::algo {

struct SftLossOptions {
  // Denominator of the summed NLL; nullopt: the number of masked tokens in this batch
  // (token mean). Set it to the token count of the whole gradient-accumulation step to
  // reproduce transformers' num_items_in_batch normalisation.
  std::optional<double> num_items_in_batch = std::nullopt;
  int64_t chunk = 0;         // LogprobOptions::chunk
  double temperature = 1.0;  // logits / temperature (1 for SFT)
};

struct SftLossResult {
  torch::Tensor loss;            // scalar, differentiable: -sum(logp * mask) / denominator
  torch::Tensor num_tokens;      // detached sum(mask)
  torch::Tensor token_accuracy;  // detached masked mean of [argmax logits == target] (logits only)
};

// logits [B, T, V], targets [B, T] int64, mask [B, T]; aligned: logits[:, t] predicts
// targets[:, t] (the caller shifts: logits[:, :-1] vs input_ids[:, 1:]). Targets under
// mask == 0 are ignored (may be -100). Uses the chunked LogprobsFromLogits. An empty mask
// gives loss 0 (torch gives NaN).
absl::StatusOr<SftLossResult> SftLossFromLogits(const torch::Tensor& logits,
                                                const torch::Tensor& targets,
                                                const torch::Tensor& mask,
                                                const SftLossOptions& options = {});

// The same from per-token logprobs [B, T] of the targets (e.g. model::ComputeTokenLogprobs).
absl::StatusOr<SftLossResult> SftLossFromLogprobs(const torch::Tensor& logprobs,
                                                  const torch::Tensor& mask,
                                                  const SftLossOptions& options = {});

}  // namespace rlhf::algo
