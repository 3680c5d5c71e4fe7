#include "common/algo/orpo.h"

#include <cmath>

#include "common/algo/checks.h"

namespace rlhf::algo {

torch::Tensor Log1mExp(const torch::Tensor& x) {
  const torch::Tensor xc = x.clamp_max(-1e-12);
  // Each branch is evaluated on inputs where it is finite, so neither value nor gradient
  // of the unselected branch can be NaN.
  const torch::Tensor near_zero = xc > -M_LN2;
  const torch::Tensor a = torch::where(near_zero, xc, torch::full_like(xc, -1.0));
  const torch::Tensor b = torch::where(near_zero, torch::full_like(xc, -1.0), xc);
  return torch::where(near_zero, torch::log(-torch::expm1(a)), torch::log1p(-torch::exp(b)));
}

absl::StatusOr<OrpoLossResult> OrpoLoss(const OrpoInputs& in, const OrpoOptions& o) {
  constexpr absl::string_view kFn = "OrpoLoss";
  if (auto s = FirstError({CheckFloat(kFn, "chosen_logps", in.chosen_logps, 1),
                           CheckFloat(kFn, "rejected_logps", in.rejected_logps, 1),
                           CheckFloat(kFn, "chosen_nll", in.chosen_nll, 0),
                           CheckSameShape(kFn, "rejected_logps", in.rejected_logps, "chosen_logps",
                                          in.chosen_logps)});
      !s.ok()) {
    return s;
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<OrpoLossResult> {
    const torch::Tensor& c = in.chosen_logps;
    const torch::Tensor& r = in.rejected_logps;
    const torch::Tensor log_odds = (c - r) - (Log1mExp(c) - Log1mExp(r));
    const torch::Tensor ratio = torch::log_sigmoid(log_odds);
    OrpoLossResult out;
    out.or_loss = -(o.beta * ratio).mean();
    out.loss = in.chosen_nll + out.or_loss;
    torch::NoGradGuard no_grad;
    out.log_odds_ratio = ratio.mean().detach();
    out.log_odds_chosen = log_odds.mean().detach();
    out.chosen_rewards = o.beta * c.detach();
    out.rejected_rewards = o.beta * r.detach();
    return out;
  });
}

}  // namespace rlhf::algo
