#include "common/algo/simpo.h"

#include "absl/strings/str_cat.h"
#include "common/algo/checks.h"

namespace rlhf::algo {

absl::StatusOr<CpoLossResult> CpoLoss(const CpoInputs& in, const CpoOptions& o) {
  constexpr absl::string_view kFn = "CpoLoss";
  if (auto s = FirstError({CheckFloat(kFn, "chosen_logps", in.chosen_logps, 1),
                           CheckFloat(kFn, "rejected_logps", in.rejected_logps, 1),
                           CheckSameShape(kFn, "rejected_logps", in.rejected_logps, "chosen_logps",
                                          in.chosen_logps)});
      !s.ok()) {
    return s;
  }
  if (o.nll_weight != 0) {
    if (auto s = CheckFloat(kFn, "chosen_nll", in.chosen_nll, 0); !s.ok()) return s;
  }
  if (!(o.beta > 0)) return absl::InvalidArgumentError(absl::StrCat(kFn, ": beta must be > 0"));
  return RunGuarded(kFn, [&]() -> absl::StatusOr<CpoLossResult> {
    const torch::Tensor& c = in.chosen_logps;
    const torch::Tensor& r = in.rejected_logps;
    torch::Tensor logits = c - r;
    const double ls = o.label_smoothing;
    CpoLossResult out;
    switch (o.loss_type) {
      case CpoLossType::kSimpo:
        logits = logits - o.simpo_gamma / o.beta;  // TRL: gamma_logratios = gamma / beta
        [[fallthrough]];
      case CpoLossType::kSigmoid:
        out.losses = -torch::log_sigmoid(o.beta * logits) * (1 - ls) -
                     torch::log_sigmoid(-o.beta * logits) * ls;
        break;
      case CpoLossType::kHinge:
        out.losses = torch::relu(1 - o.beta * logits);
        break;
      case CpoLossType::kIpo: {
        const torch::Tensor d = logits - 1 / (2 * o.beta);
        out.losses = d * d;
        break;
      }
    }
    out.loss = out.losses.mean();
    if (o.nll_weight != 0) out.loss = out.loss + o.nll_weight * in.chosen_nll;
    torch::NoGradGuard no_grad;
    out.chosen_rewards = o.beta * c.detach();
    out.rejected_rewards = o.beta * r.detach();
    out.reward_accuracy = (out.chosen_rewards > out.rejected_rewards).to(c.scalar_type()).mean();
    out.reward_margin = (out.chosen_rewards - out.rejected_rewards).mean();
    return out;
  });
}

absl::StatusOr<CpoLossResult> SimpoLoss(const CpoInputs& inputs, CpoOptions options) {
  options.loss_type = CpoLossType::kSimpo;
  return CpoLoss(inputs, options);
}

}  // namespace rlhf::algo
