#include "common/algo/grpo.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/algo/checks.h"
#include "common/algo/kl.h"

namespace rlhf::algo {
namespace {

absl::Status CheckGroups(absl::string_view fn, const torch::Tensor& rewards, int64_t group_size) {
  if (auto s = CheckFloat(fn, "rewards", rewards, 1); !s.ok()) return s;
  if (group_size < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat(fn, ": group_size must be >= 2, got ", group_size));
  }
  if (rewards.size(0) == 0 || rewards.size(0) % group_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(fn, ": ", rewards.size(0),
                     " rewards are not a positive multiple of group_size ", group_size));
  }
  return absl::OkStatus();
}

// Token-mean over the mask, TRL's masked_batch_mean: (x * m).sum() / m.sum().clamp(min=1).
torch::Tensor BatchMean(const torch::Tensor& x, const torch::Tensor& mask) {
  return MaskedZero(x, mask).sum() / MaskAsFloat(mask, x).sum().clamp_min(1.0);
}

}  // namespace

absl::StatusOr<GroupAdvantages> GrpoAdvantages(const torch::Tensor& rewards, int64_t group_size,
                                               RewardScaling scaling) {
  constexpr absl::string_view kFn = "GrpoAdvantages";
  if (auto s = CheckGroups(kFn, rewards, group_size); !s.ok()) return s;
  return RunGuarded(kFn, [&]() -> absl::StatusOr<GroupAdvantages> {
    torch::NoGradGuard no_grad;
    const torch::Tensor grouped = rewards.view({-1, group_size});
    GroupAdvantages g;
    g.group_mean = grouped.mean(1).repeat_interleave(group_size);
    g.advantages = rewards - g.group_mean;
    if (scaling == RewardScaling::kBatch) {
      g.std = rewards.std().expand_as(rewards).contiguous();
    } else {
      g.std = grouped.std(1).repeat_interleave(group_size);
    }
    g.zero_std_fraction =
        torch::isclose(g.std, torch::zeros_like(g.std)).to(rewards.scalar_type()).mean();
    if (scaling != RewardScaling::kNone) g.advantages = g.advantages / (g.std + 1e-4);
    return g;
  });
}

absl::StatusOr<GrpoLossResult> GrpoLoss(const GrpoLossInputs& in, const GrpoLossOptions& o) {
  constexpr absl::string_view kFn = "GrpoLoss";
  if (auto s = CheckFloat(kFn, "logprobs", in.logprobs, 2); !s.ok()) return s;
  if (auto s = CheckMask(kFn, in.mask, "logprobs", in.logprobs); !s.ok()) return s;
  if (auto s = CheckFloat(kFn, "advantages", in.advantages, 1); !s.ok()) return s;
  if (in.advantages.size(0) != in.logprobs.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(kFn, ": advantages has ", in.advantages.size(0),
                                                   " rows but logprobs has ", in.logprobs.size(0)));
  }
  if (in.old_logprobs.defined()) {
    if (auto s = CheckSameShape(kFn, "old_logprobs", in.old_logprobs, "logprobs", in.logprobs);
        !s.ok()) {
      return s;
    }
  }
  if (o.beta != 0) {
    if (auto s = CheckSameShape(kFn, "ref_logprobs", in.ref_logprobs, "logprobs", in.logprobs);
        !s.ok()) {
      return s;
    }
  }
  if (in.is_weights.defined()) {
    if (auto s = CheckSameShape(kFn, "is_weights", in.is_weights, "logprobs", in.logprobs);
        !s.ok()) {
      return s;
    }
  }
  if (o.loss_type == GrpoLossType::kDapo && o.num_items_in_batch && !(*o.num_items_in_batch > 0)) {
    return absl::InvalidArgumentError(absl::StrCat(kFn, ": num_items_in_batch must be > 0"));
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<GrpoLossResult> {
    const torch::Tensor& lp = in.logprobs;
    const torch::Tensor& mask = in.mask;
    const torch::Tensor old = in.old_logprobs.defined() ? in.old_logprobs : lp.detach();
    const torch::Tensor log_ratio = MaskedZero(lp - old, mask);
    torch::Tensor log_weights = log_ratio;
    if (o.importance_sampling == ImportanceSampling::kSequence) {
      log_weights =
          (log_ratio.sum(-1) / MaskAsFloat(mask, lp).sum(-1).clamp_min(1.0)).unsqueeze(-1);
    }
    torch::Tensor coef_1 = torch::exp(log_weights);
    const torch::Tensor adv = in.advantages.unsqueeze(1).to(lp.scalar_type());
    const bool cispo = o.policy_loss == PolicyLossKind::kCispo;
    torch::Tensor per_token;
    if (cispo) {
      per_token = -coef_1.clamp_max(o.epsilon_high).detach() * adv * MaskedZero(lp, mask);
    } else {
      const torch::Tensor coef_2 = coef_1.clamp(1.0 - o.epsilon_low, 1.0 + o.epsilon_high);
      if (o.delta) coef_1 = coef_1.clamp_max(*o.delta);
      per_token = -torch::min(coef_1 * adv, coef_2 * adv);
    }
    if (in.is_weights.defined()) per_token = per_token * in.is_weights.detach();
    GrpoLossResult r;
    torch::Tensor kl;
    if (o.beta != 0) {
      kl = KlPenalty(lp, in.ref_logprobs, KlEstimator::kK3, mask);
      per_token = per_token + o.beta * kl;
    }
    per_token = MaskedZero(per_token.expand_as(lp), mask);
    r.per_token_loss = per_token;
    switch (o.loss_type) {
      case GrpoLossType::kGrpo:
        r.loss = (per_token.sum(-1) / MaskAsFloat(mask, lp).sum(-1).clamp_min(1.0)).mean();
        break;
      case GrpoLossType::kBnpo:
        r.loss = BatchMean(per_token, mask);
        break;
      case GrpoLossType::kDrGrpo: {
        const int64_t len = o.max_completion_length > 0 ? o.max_completion_length : lp.size(1);
        r.loss = per_token.sum() / static_cast<double>(std::max<int64_t>(lp.size(0) * len, 1));
        break;
      }
      case GrpoLossType::kDapo:
        r.loss = o.num_items_in_batch ? per_token.sum() / *o.num_items_in_batch
                                      : BatchMean(per_token, mask);
        break;
    }
    torch::NoGradGuard no_grad;
    const auto mean = [&](const torch::Tensor& x) {
      return x.size(1) == 1 ? x.mean() : BatchMean(x, mask);
    };
    const auto dtype = lp.scalar_type();
    const torch::Tensor low = cispo ? torch::zeros_like(coef_1, torch::kBool)
                                    : (coef_1 < 1.0 - o.epsilon_low) & (adv < 0);
    const torch::Tensor high =
        (coef_1 > (cispo ? o.epsilon_high : 1.0 + o.epsilon_high)) & (adv > 0);
    r.clip_ratio_low = mean(low.to(dtype));
    r.clip_ratio_high = mean(high.to(dtype));
    r.clip_ratio_region = mean((low | high).to(dtype));
    r.mean_kl = kl.defined() ? BatchMean(kl, mask).detach() : torch::zeros({}, lp.options());
    return r;
  });
}

absl::StatusOr<torch::Tensor> RlooAdvantages(const torch::Tensor& rewards, int64_t group_size,
                                             const torch::Tensor& sequence_kl,
                                             const RlooAdvantageOptions& o) {
  constexpr absl::string_view kFn = "RlooAdvantages";
  if (auto s = CheckGroups(kFn, rewards, group_size); !s.ok()) return s;
  if (sequence_kl.defined()) {
    if (auto s = CheckSameShape(kFn, "sequence_kl", sequence_kl, "rewards", rewards); !s.ok())
      return s;
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<torch::Tensor> {
    torch::NoGradGuard no_grad;
    torch::Tensor r = rewards;
    if (o.reward_clip) r = r.clamp(o.reward_clip->first, o.reward_clip->second);
    if (o.beta != 0 && sequence_kl.defined()) r = r - o.beta * sequence_kl.to(r.scalar_type());
    const torch::Tensor grouped = r.view({-1, group_size});
    const torch::Tensor baseline =
        ((grouped.sum(1, /*keepdim=*/true) - grouped) / static_cast<double>(group_size - 1))
            .view(-1);
    torch::Tensor advantages = r - baseline;
    if (o.normalize_advantages) {
      advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-4);
    }
    return advantages;
  });
}

absl::StatusOr<RlooLossResult> RlooLoss(const torch::Tensor& logprobs,
                                        const torch::Tensor& old_logprobs,
                                        const torch::Tensor& advantages, const torch::Tensor& mask,
                                        double epsilon_low, double epsilon_high) {
  constexpr absl::string_view kFn = "RlooLoss";
  if (auto s = FirstError({CheckFloat(kFn, "logprobs", logprobs, 2),
                           CheckSameShape(kFn, "old_logprobs", old_logprobs, "logprobs", logprobs),
                           CheckMask(kFn, mask, "logprobs", logprobs),
                           CheckFloat(kFn, "advantages", advantages, 1)});
      !s.ok()) {
    return s;
  }
  if (advantages.size(0) != logprobs.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(kFn, ": advantages has ", advantages.size(0),
                                                   " rows but logprobs has ", logprobs.size(0)));
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<RlooLossResult> {
    const torch::Tensor log_ratio = MaskedRowSum(logprobs, mask) - MaskedRowSum(old_logprobs, mask);
    const torch::Tensor coef_1 = torch::exp(log_ratio);
    const torch::Tensor coef_2 = coef_1.clamp(1.0 - epsilon_low, 1.0 + epsilon_high);
    const torch::Tensor adv = advantages.to(logprobs.scalar_type());
    RlooLossResult r;
    r.loss = (-torch::min(coef_1 * adv, coef_2 * adv)).mean();
    torch::NoGradGuard no_grad;
    const torch::Tensor low = (coef_1 < 1.0 - epsilon_low) & (adv < 0);
    const torch::Tensor high = (coef_1 > 1.0 + epsilon_high) & (adv > 0);
    r.clip_ratio_low = low.to(adv.scalar_type()).mean();
    r.clip_ratio_high = high.to(adv.scalar_type()).mean();
    r.clip_ratio_region = (low | high).to(adv.scalar_type()).mean();
    return r;
  });
}

absl::StatusOr<ReinforcePlusPlusResult> ReinforcePlusPlusAdvantages(const torch::Tensor& rewards,
                                                                    const torch::Tensor& mask,
                                                                    double gamma) {
  constexpr absl::string_view kFn = "ReinforcePlusPlusAdvantages";
  if (auto s = FirstError(
          {CheckFloat(kFn, "rewards", rewards, 2), CheckMask(kFn, mask, "rewards", rewards)});
      !s.ok()) {
    return s;
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<ReinforcePlusPlusResult> {
    torch::NoGradGuard no_grad;
    const torch::Tensor r = MaskedZero(rewards.detach(), mask);
    torch::Tensor returns = torch::zeros_like(r);
    torch::Tensor running = torch::zeros({r.size(0)}, r.options());
    for (int64_t t = r.size(1) - 1; t >= 0; --t) {
      running = r.select(1, t) + gamma * running;
      returns.select(1, t).copy_(running);
    }
    ReinforcePlusPlusResult out;
    out.returns = MaskedZero(returns, mask);
    const torch::Tensor mean = MaskedMean(out.returns, mask);
    const torch::Tensor var = MaskedVar(out.returns, mask, /*unbiased=*/false);
    out.advantages = MaskedZero((out.returns - mean) * torch::rsqrt(var.clamp_min(1e-8)), mask);
    return out;
  });
}

}  // namespace rlhf::algo
