#include "common/algo/sft.h"

#include "absl/strings/str_cat.h"
#include "common/algo/checks.h"
#include "common/algo/logprobs.h"
#include "common/algo/masked.h"

namespace rlhf::algo {

absl::StatusOr<SftLossResult> SftLossFromLogprobs(const torch::Tensor& logprobs,
                                                  const torch::Tensor& mask,
                                                  const SftLossOptions& options) {
  constexpr absl::string_view kFn = "SftLossFromLogprobs";
  if (auto s = CheckFloat(kFn, "logprobs", logprobs, 2); !s.ok()) return s;
  if (auto s = CheckMask(kFn, mask, "logprobs", logprobs); !s.ok()) return s;
  if (options.num_items_in_batch && !(*options.num_items_in_batch > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(kFn, ": num_items_in_batch must be > 0"));
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<SftLossResult> {
    SftLossResult r;
    const torch::Tensor nll_sum = -MaskedSum(logprobs, mask);
    r.num_tokens = MaskAsFloat(mask, logprobs).sum().detach();
    r.loss = options.num_items_in_batch ? nll_sum / *options.num_items_in_batch
                                        : MaskedMean(-logprobs, mask);
    return r;
  });
}

absl::StatusOr<SftLossResult> SftLossFromLogits(const torch::Tensor& logits,
                                                const torch::Tensor& targets,
                                                const torch::Tensor& mask,
                                                const SftLossOptions& options) {
  constexpr absl::string_view kFn = "SftLossFromLogits";
  if (auto s = CheckFloat(kFn, "logits", logits, 3); !s.ok()) return s;
  if (!targets.defined() || targets.dim() != 2) {
    return absl::InvalidArgumentError(absl::StrCat(kFn, ": targets must be [B, T]"));
  }
  if (auto s = CheckMask(kFn, mask, "targets", targets); !s.ok()) return s;
  auto safe_targets = RunGuarded(kFn, [&]() -> absl::StatusOr<torch::Tensor> {
    return torch::where(mask != 0, targets, torch::zeros_like(targets)).to(torch::kLong);
  });
  if (!safe_targets.ok()) return safe_targets.status();
  LogprobOptions lp_options;
  lp_options.chunk = options.chunk;
  lp_options.temperature = options.temperature;
  lp_options.compute_entropy = false;
  auto lp = LogprobsAndEntropyFromLogits(logits, *safe_targets, lp_options);
  if (!lp.ok()) return lp.status();
  auto r = SftLossFromLogprobs(lp->logprobs, mask, options);
  if (!r.ok()) return r.status();
  return RunGuarded(kFn, [&]() -> absl::StatusOr<SftLossResult> {
    torch::NoGradGuard no_grad;
    const torch::Tensor correct =
        (logits.argmax(-1) == *safe_targets).to(lp->logprobs.scalar_type());
    r->token_accuracy = MaskedMean(correct, mask);
    return *std::move(r);
  });
}

}  // namespace rlhf::algo
