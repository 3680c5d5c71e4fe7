#include "common/model/sampling.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace rlhf::model {

absl::Status ValidateSamplingParams(const SamplingParams& params) {
  if (params.max_new_tokens <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens must be positive, got ", params.max_new_tokens));
  }
  // Far past any context; keeps prompt length + max_new_tokens from overflowing.
  constexpr int64_t kMaxNewTokens = int64_t{1} << 20;
  if (params.max_new_tokens > kMaxNewTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_new_tokens must be <= ", kMaxNewTokens, ", got ", params.max_new_tokens));
  }
  if (!(params.temperature >= 0.0f) || std::isinf(params.temperature)) {
    return absl::InvalidArgumentError(
        absl::StrCat("temperature must be finite and >= 0, got ", params.temperature));
  }
  if (params.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0, got ", params.top_k));
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", params.top_p));
  }
  return absl::OkStatus();
}

bool IsGreedy(const SamplingParams& params) { return params.greedy || params.temperature == 0.0f; }

torch::Tensor WarpLogits(torch::Tensor scores, const SamplingParams& params) {
  constexpr float kFilter = -std::numeric_limits<float>::infinity();
  if (params.temperature != 1.0f) scores = scores / params.temperature;
  const int64_t vocab = scores.size(-1);
  if (params.top_k > 0 && params.top_k < vocab) {
    // TopKLogitsWarper: indices_to_remove = scores < torch.topk(scores, top_k)[0][..., -1, None]
    torch::Tensor kth = std::get<0>(torch::topk(scores, params.top_k, -1)).slice(-1, -1);
    scores = scores.masked_fill(scores < kth, kFilter);
  }
  if (params.top_p < 1.0f) {
    // TopPLogitsWarper: sort ascending, remove cumulative_probs <= 1 - top_p, keep the last
    // (most likely) min_tokens_to_keep = 1.
    auto [sorted, order] = torch::sort(scores, -1, /*descending=*/false);
    torch::Tensor cumulative = sorted.softmax(-1).cumsum(-1);
    torch::Tensor remove = cumulative <= (1.0f - params.top_p);
    remove.select(-1, vocab - 1).fill_(false);
    scores = scores.masked_fill(remove.scatter(-1, order, remove), kFilter);
  }
  return scores;
}

std::pair<torch::Tensor, torch::Tensor> SelectNextTokens(const torch::Tensor& logits,
                                                         const SamplingParams& params,
                                                         std::vector<at::Generator>& generators) {
  torch::Tensor scores = logits.to(torch::kFloat32);
  if (IsGreedy(params)) {
    torch::Tensor tokens = scores.argmax(-1);
    torch::Tensor logprobs =
        scores.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - scores.logsumexp(-1);
    return {tokens, logprobs};
  }
  torch::Tensor logprobs_all = WarpLogits(scores, params).log_softmax(-1);
  torch::Tensor cdf = logprobs_all.exp().cumsum(-1);
  const int64_t batch = scores.size(0);
  torch::Tensor uniforms = torch::empty({batch, 1}, torch::kFloat64);
  auto u = uniforms.accessor<double, 2>();
  for (int64_t b = 0; b < batch; ++b) {
    u[b][0] = at::rand({1}, generators[b], torch::kFloat64).item<double>();
  }
  // The first index whose cumulative probability exceeds u * total: never a token of
  // probability 0, since its cumulative value equals its predecessor's.
  torch::Tensor target =
      (uniforms.to(cdf.device()) * cdf.slice(-1, -1).to(torch::kFloat64)).to(torch::kFloat32);
  torch::Tensor tokens = torch::searchsorted(cdf, target, /*out_int32=*/false, /*right=*/true)
                             .clamp_max(scores.size(-1) - 1)
                             .squeeze(-1);
  // Rounding can put u * total at the very end of the CDF, past the last token that has
  // probability; fall back to the most likely token there.
  torch::Tensor impossible = logprobs_all.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).isinf();
  tokens = torch::where(impossible, logprobs_all.argmax(-1), tokens);
  torch::Tensor logprobs = logprobs_all.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
  return {tokens, logprobs};
}

}  // namespace rlhf::model
