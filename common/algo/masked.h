#pragma once

// Masked reductions over [B, T] token tensors: the building blocks every loss here uses.
//
// Convention: `mask` is [B, T] (or the shape of `values`), bool or float; 1 = a real
// response token, 0 = padding/prompt. Float masks act as per-token weights. Masked-out
// positions never contribute, even when they hold inf/NaN (e.g. -inf logprobs on padding):
// values are selected with torch::where, not multiplied by the mask.
//
// Guards (where TRL would raise or return NaN): an empty mask gives mean 0 and variance 0;
// the unbiased variance of a single token is 0. Gradients stay finite in both cases.
//
// These are pure math helpers: they throw c10::Error on mismatched shapes; the public loss
// entry points that call them validate first and catch. Everything in common/algo is a pure
// function of its arguments (thread-safe), except the stateful KlController (kl.h).

#include <cstdint>

#include <torch/torch.h>

namespace rlhf::algo {

// `mask` as a float tensor of `values`' dtype (bool/int -> 0/1).
torch::Tensor MaskAsFloat(const torch::Tensor& mask, const torch::Tensor& values);

// where(mask != 0, values * mask, 0): masked-out positions become exactly 0 even if inf/NaN.
torch::Tensor MaskedZero(const torch::Tensor& values, const torch::Tensor& mask);

// sum(values * mask) over all elements -> scalar.
torch::Tensor MaskedSum(const torch::Tensor& values, const torch::Tensor& mask);

// sum over the last dim: [B, T] -> [B].
torch::Tensor MaskedRowSum(const torch::Tensor& values, const torch::Tensor& mask);

// sum(values * mask) / sum(mask) -> scalar; 0 when sum(mask) == 0.
// Matches trl.core.masked_mean(values, mask) (axis=None).
torch::Tensor MaskedMean(const torch::Tensor& values, const torch::Tensor& mask);

// Per-row mean over the last dim: [B, T] -> [B]; rows with no tokens give 0.
// Matches trl.core.masked_mean(values, mask, axis=1).
torch::Tensor MaskedRowMean(const torch::Tensor& values, const torch::Tensor& mask);

// Variance over all masked elements -> scalar: MaskedMean((v - MaskedMean(v))^2) times the
// Bessel factor n / (n - 1) with n = sum(mask) when `unbiased` (n <= 1: factor 1).
// Matches trl.core.masked_var (unbiased=True default); OpenRLHF whitens with the biased one.
torch::Tensor MaskedVar(const torch::Tensor& values, const torch::Tensor& mask,
                        bool unbiased = true);

// (values - mean) * rsqrt(var + eps), plus mean again when !shift_mean; masked positions
// are set to 0 (TRL's callers masked_fill them right after). Matches
// trl.core.masked_whiten(values, mask, shift_mean) with unbiased var and eps 1e-8.
// Zero variance gives (v - mean) * 1e4 = 0 for constant inputs: finite.
torch::Tensor MaskedWhiten(const torch::Tensor& values, const torch::Tensor& mask,
                           bool shift_mean = true, bool unbiased = true, double eps = 1e-8);

// How a per-token loss [B, T] becomes a scalar.
enum class LossAggregation {
  // sum(l * m) / sum(m): every token weighs the same. TRL PPO masked_mean, TRL GRPO "bnpo",
  // OpenRLHF token_level_loss=True.
  kTokenMean,
  // mean_b(sum_t l * m / sum_t m): every sequence weighs the same; rows with no tokens
  // count as 0 in the batch mean (TRL's clamp(min=1)). TRL GRPO "grpo".
  kSequenceMean,
  // mean_b(sum_t l * m): per-sequence sums (REINFORCE / RLOO on summed logprobs).
  kSequenceSum,
  // sum(l * m) / (B * max_length): a constant normaliser. TRL GRPO "dr_grpo" (Dr. GRPO).
  kConstantNormalizer,
};

// Reduces `per_token_loss` [B, T] with `mask` [B, T]. `max_length` is the constant for
// kConstantNormalizer (TRL's max_completion_length); <= 0 means T.
torch::Tensor AggregateLoss(const torch::Tensor& per_token_loss, const torch::Tensor& mask,
                            LossAggregation aggregation, int64_t max_length = 0);

}  // namespace rlhf::algo
