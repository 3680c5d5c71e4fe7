#include "common/model/rope.h"

#include <cmath>
#include <numbers>

namespace rlhf::model {
namespace {

// Python's `scalar / tensor` is Tensor.__rdiv__: tensor.reciprocal() * scalar. ATen's C++
// operator/ divides instead, which can differ in the last bit; follow Python.
torch::Tensor ScalarOver(double scalar, const torch::Tensor& t) { return t.reciprocal() * scalar; }

}  // namespace

torch::Tensor ComputeRopeInverseFrequencies(const ModelConfig& config) {
  const RopeConfig& rope = config.rope;
  const int64_t dim = static_cast<int64_t>(config.head_dim * rope.partial_rotary_factor);
  // inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
  torch::Tensor exponents = torch::arange(0, dim, 2, torch::kInt64).to(torch::kFloat32) / dim;
  torch::Tensor inv_freq = ScalarOver(1.0, torch::pow(rope.theta, exponents));
  if (rope.type == "linear") {
    inv_freq = inv_freq / rope.factor;
  } else if (rope.type == "llama3") {
    const double factor = rope.factor;
    const double low = rope.low_freq_factor;
    const double high = rope.high_freq_factor;
    const double old_context_len = static_cast<double>(rope.original_max_position_embeddings);
    const double low_freq_wavelen = old_context_len / low;
    const double high_freq_wavelen = old_context_len / high;
    torch::Tensor wavelen = ScalarOver(2 * std::numbers::pi, inv_freq);
    torch::Tensor inv_freq_llama =
        torch::where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq);
    torch::Tensor smooth_factor = (ScalarOver(old_context_len, wavelen) - low) / (high - low);
    torch::Tensor smoothed =
        (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama;
    torch::Tensor is_medium =
        (wavelen < high_freq_wavelen).logical_not() * (wavelen > low_freq_wavelen).logical_not();
    inv_freq = torch::where(is_medium, smoothed, inv_freq_llama);
  }
  return inv_freq;
}

std::pair<torch::Tensor, torch::Tensor> RopeCosSin(const torch::Tensor& inv_freq,
                                                   const torch::Tensor& position_ids,
                                                   torch::ScalarType dtype) {
  // freqs = (inv_freq[None, :, None] @ position_ids[:, None, :]).transpose(1, 2): a matmul
  // with an inner dimension of 1 is an elementwise product.
  torch::Tensor freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq.view({1, 1, -1});
  torch::Tensor emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

torch::Tensor ApplyRope(const torch::Tensor& x, const torch::Tensor& cos,
                        const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  torch::Tensor rotated = torch::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

}  // namespace rlhf::model
