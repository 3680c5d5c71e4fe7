#include "common/algo/dpo.h"

#include "absl/strings/str_cat.h"
#include "common/algo/checks.h"

namespace rlhf::algo {

absl::StatusOr<DpoLossResult> DpoLoss(const DpoInputs& in, const DpoOptions& o) {
  constexpr absl::string_view kFn = "DpoLoss";
  if (auto s = FirstError({CheckFloat(kFn, "policy_chosen_logps", in.policy_chosen_logps, 1),
                           CheckFloat(kFn, "policy_rejected_logps", in.policy_rejected_logps, 1),
                           CheckFloat(kFn, "ref_chosen_logps", in.ref_chosen_logps, 1),
                           CheckFloat(kFn, "ref_rejected_logps", in.ref_rejected_logps, 1)});
      !s.ok()) {
    return s;
  }
  const torch::Tensor& like = in.policy_chosen_logps;
  if (auto s = FirstError({CheckSameShape(kFn, "policy_rejected_logps", in.policy_rejected_logps,
                                          "policy_chosen_logps", like),
                           CheckSameShape(kFn, "ref_chosen_logps", in.ref_chosen_logps,
                                          "policy_chosen_logps", like),
                           CheckSameShape(kFn, "ref_rejected_logps", in.ref_rejected_logps,
                                          "policy_chosen_logps", like)});
      !s.ok()) {
    return s;
  }
  const bool normalize = o.loss_type == DpoLossType::kIpo && in.chosen_lengths.defined();
  if (normalize) {
    if (auto s = FirstError(
            {CheckSameShape(kFn, "chosen_lengths", in.chosen_lengths, "policy_chosen_logps", like),
             CheckSameShape(kFn, "rejected_lengths", in.rejected_lengths, "policy_chosen_logps",
                            like)});
        !s.ok()) {
      return s;
    }
  }
  if (!(o.beta > 0)) return absl::InvalidArgumentError(absl::StrCat(kFn, ": beta must be > 0"));
  if (o.loss_type == DpoLossType::kRobust && !(o.label_smoothing < 0.5)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kFn, ": robust DPO needs label_smoothing < 0.5"));
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<DpoLossResult> {
    torch::Tensor pc = in.policy_chosen_logps, pr = in.policy_rejected_logps;
    torch::Tensor rc = in.ref_chosen_logps, rr = in.ref_rejected_logps;
    if (normalize) {
      // A zero length would divide by zero; TRL would give inf/NaN. Clamp to 1 token.
      const torch::Tensor lc = in.chosen_lengths.to(pc.scalar_type()).clamp_min(1);
      const torch::Tensor lr = in.rejected_lengths.to(pc.scalar_type()).clamp_min(1);
      pc = pc / lc, pr = pr / lr, rc = rc / lc, rr = rr / lr;
    }
    torch::Tensor logits = pc - pr;
    if (!o.reference_free) logits = logits - (rc - rr);
    const double ls = o.label_smoothing;
    DpoLossResult r;
    switch (o.loss_type) {
      case DpoLossType::kSigmoid:
        r.losses = -torch::log_sigmoid(o.beta * logits) * (1 - ls) -
                   torch::log_sigmoid(-o.beta * logits) * ls;
        break;
      case DpoLossType::kRobust:
        r.losses = (-torch::log_sigmoid(o.beta * logits) * (1 - ls) +
                    torch::log_sigmoid(-o.beta * logits) * ls) /
                   (1 - 2 * ls);
        break;
      case DpoLossType::kHinge:
        r.losses = torch::relu(1 - o.beta * logits);
        break;
      case DpoLossType::kIpo: {
        const torch::Tensor d = logits - 1 / (2 * o.beta);
        r.losses = d * d;
        break;
      }
    }
    r.loss = r.losses.mean();
    torch::NoGradGuard no_grad;
    r.chosen_rewards = o.beta * (pc - rc).detach();
    r.rejected_rewards = o.beta * (pr - rr).detach();
    r.reward_accuracy = (r.chosen_rewards > r.rejected_rewards).to(pc.scalar_type()).mean();
    r.reward_margin = (r.chosen_rewards - r.rejected_rewards).mean();
    return r;
  });
}

}  // namespace rlhf::algo
