#include "common/algo/reward_model.h"

#include "common/algo/checks.h"

namespace rlhf::algo {

absl::StatusOr<RewardModelLossResult> RewardModelLoss(const torch::Tensor& chosen_rewards,
                                                      const torch::Tensor& rejected_rewards,
                                                      const torch::Tensor& margin,
                                                      const RewardModelLossOptions& options) {
  constexpr absl::string_view kFn = "RewardModelLoss";
  const bool column =
      chosen_rewards.defined() && chosen_rewards.dim() == 2 && chosen_rewards.size(1) == 1;
  const torch::Tensor chosen = column ? chosen_rewards.squeeze(1) : chosen_rewards;
  const torch::Tensor rejected = column && rejected_rewards.defined() && rejected_rewards.dim() == 2
                                     ? rejected_rewards.squeeze(1)
                                     : rejected_rewards;
  if (auto s = FirstError({CheckFloat(kFn, "chosen_rewards", chosen, 1),
                           CheckFloat(kFn, "rejected_rewards", rejected, 1)});
      !s.ok()) {
    return s;
  }
  if (auto s = CheckSameShape(kFn, "rejected_rewards", rejected, "chosen_rewards", chosen);
      !s.ok()) {
    return s;
  }
  if (margin.defined()) {
    if (auto s = CheckSameShape(kFn, "margin", margin, "chosen_rewards", chosen); !s.ok()) return s;
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<RewardModelLossResult> {
    torch::Tensor diff = chosen - rejected;
    if (margin.defined()) diff = diff - margin.to(diff.scalar_type());
    RewardModelLossResult r;
    r.loss = -torch::log_sigmoid(diff).mean();
    if (options.center_rewards_coefficient) {
      const torch::Tensor sum = chosen + rejected;
      r.loss = r.loss + *options.center_rewards_coefficient * (sum * sum).mean();
    }
    torch::NoGradGuard no_grad;
    r.accuracy = (chosen > rejected).to(chosen.scalar_type()).mean();
    r.margin = (chosen - rejected).mean();
    r.chosen_mean = chosen.mean();
    r.rejected_mean = rejected.mean();
    return r;
  });
}

}  // namespace rlhf::algo
