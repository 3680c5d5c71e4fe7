#include "common/algo/kto.h"

#include "absl/strings/str_cat.h"
#include "common/algo/checks.h"

namespace rlhf::algo {

absl::StatusOr<KtoLossResult> KtoLoss(const KtoInputs& in, const KtoOptions& o) {
  constexpr absl::string_view kFn = "KtoLoss";
  if (auto s = FirstError({CheckFloat(kFn, "policy_logps", in.policy_logps, 1),
                           CheckFloat(kFn, "ref_logps", in.ref_logps, 1)});
      !s.ok()) {
    return s;
  }
  if (auto s = FirstError(
          {CheckSameShape(kFn, "ref_logps", in.ref_logps, "policy_logps", in.policy_logps),
           CheckSameShape(kFn, "desirable", in.desirable, "policy_logps", in.policy_logps)});
      !s.ok()) {
    return s;
  }
  if (o.calculate_kl) {
    if (auto s = FirstError({CheckFloat(kFn, "policy_kl_logps", in.policy_kl_logps, 1),
                             CheckSameShape(kFn, "ref_kl_logps", in.ref_kl_logps, "policy_kl_logps",
                                            in.policy_kl_logps)});
        !s.ok()) {
      return s;
    }
    if (in.policy_kl_logps.size(0) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(kFn, ": the KL batch is empty"));
    }
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<KtoLossResult> {
    const torch::Tensor& pl = in.policy_logps;
    KtoLossResult r;
    {
      torch::NoGradGuard no_grad;
      r.kl = o.calculate_kl
                 ? (in.policy_kl_logps - in.ref_kl_logps).mean().clamp_min(0).to(pl.scalar_type())
                 : torch::zeros({}, pl.options());
    }
    const torch::Tensor logratio = pl - in.ref_logps;
    const torch::Tensor desirable = in.desirable != 0;
    const torch::Tensor chosen =
        o.desirable_weight * (1 - torch::sigmoid(o.beta * (logratio - r.kl)));
    const torch::Tensor rejected =
        o.undesirable_weight * (1 - torch::sigmoid(o.beta * (r.kl - logratio)));
    r.losses = torch::where(desirable, chosen, rejected);
    r.loss = pl.size(0) > 0 ? r.losses.mean() : r.losses.sum();
    torch::NoGradGuard no_grad;
    r.rewards = o.beta * logratio.detach();
    const torch::Tensor d = desirable.to(pl.scalar_type());
    const torch::Tensor nd = 1 - d;
    r.chosen_reward_mean = (r.rewards * d).sum() / d.sum().clamp_min(1);
    r.rejected_reward_mean = (r.rewards * nd).sum() / nd.sum().clamp_min(1);
    return r;
  });
}

torch::Tensor KtoKlCompletionIndex(int64_t batch) {
  if (batch <= 0) return torch::empty({0}, torch::kLong);
  return torch::roll(torch::arange(batch, torch::kLong), 1);
}

}  // namespace rlhf::algo
