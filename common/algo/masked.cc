#include "common/algo/masked.h"

#include <algorithm>

namespace rlhf::algo {
namespace {

// count, or 1 where count == 0 (the numerator is 0 there), so division never makes NaN
// and its gradient stays finite.
torch::Tensor SafeCount(const torch::Tensor& count) {
  return torch::where(count != 0, count, torch::ones_like(count));
}

}  // namespace

torch::Tensor MaskAsFloat(const torch::Tensor& mask, const torch::Tensor& values) {
  return mask.to(values.scalar_type());
}

torch::Tensor MaskedZero(const torch::Tensor& values, const torch::Tensor& mask) {
  if (mask.scalar_type() == torch::kBool) {
    return torch::where(mask, values, torch::zeros({}, values.options()));
  }
  const torch::Tensor m = MaskAsFloat(mask, values);
  return torch::where(m != 0, values * m, torch::zeros({}, values.options()));
}

torch::Tensor MaskedSum(const torch::Tensor& values, const torch::Tensor& mask) {
  return MaskedZero(values, mask).sum();
}

torch::Tensor MaskedRowSum(const torch::Tensor& values, const torch::Tensor& mask) {
  return MaskedZero(values, mask).sum(-1);
}

torch::Tensor MaskedMean(const torch::Tensor& values, const torch::Tensor& mask) {
  return MaskedSum(values, mask) / SafeCount(MaskAsFloat(mask, values).sum());
}

torch::Tensor MaskedRowMean(const torch::Tensor& values, const torch::Tensor& mask) {
  return MaskedRowSum(values, mask) / SafeCount(MaskAsFloat(mask, values).sum(-1));
}

torch::Tensor MaskedVar(const torch::Tensor& values, const torch::Tensor& mask, bool unbiased) {
  const torch::Tensor mean = MaskedMean(values, mask);
  const torch::Tensor centered = values - mean;
  torch::Tensor variance = MaskedMean(centered * centered, mask);
  if (unbiased) {
    const torch::Tensor n = MaskAsFloat(mask, values).sum();
    // n / (n - 1), and 1 for n <= 1 (TRL raises for 0 and divides by zero for 1).
    const torch::Tensor bessel = torch::where(
        n > 1, n / torch::where(n > 1, n - 1, torch::ones_like(n)), torch::ones_like(n));
    variance = variance * bessel;
  }
  return variance;
}

torch::Tensor MaskedWhiten(const torch::Tensor& values, const torch::Tensor& mask, bool shift_mean,
                           bool unbiased, double eps) {
  const torch::Tensor mean = MaskedMean(values, mask);
  const torch::Tensor var = MaskedVar(values, mask, unbiased);
  torch::Tensor whitened = (values - mean) * torch::rsqrt(var + eps);
  if (!shift_mean) whitened = whitened + mean;
  return MaskedZero(whitened, mask);
}

torch::Tensor AggregateLoss(const torch::Tensor& per_token_loss, const torch::Tensor& mask,
                            LossAggregation aggregation, int64_t max_length) {
  switch (aggregation) {
    case LossAggregation::kTokenMean:
      return MaskedMean(per_token_loss, mask);
    case LossAggregation::kSequenceMean:
      return MaskedRowMean(per_token_loss, mask).mean();
    case LossAggregation::kSequenceSum:
      return MaskedRowSum(per_token_loss, mask).mean();
    case LossAggregation::kConstantNormalizer: {
      const int64_t rows =
          per_token_loss.dim() > 1 ? per_token_loss.numel() / per_token_loss.size(-1) : 1;
      const int64_t length = max_length > 0 ? max_length : per_token_loss.size(-1);
      return MaskedSum(per_token_loss, mask) /
             static_cast<double>(std::max<int64_t>(rows * length, 1));
    }
  }
  TORCH_CHECK(false, "unknown LossAggregation");
}

}  // namespace rlhf::algo
