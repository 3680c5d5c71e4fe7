#include "common/algo/ppo.h"

#include "absl/strings/str_cat.h"
#include "common/algo/checks.h"

namespace rlhf::algo {
namespace {

// All of `tensors` are floating [B, T] with the shape of the first, and mask matches.
absl::Status CheckTokenTensors(
    absl::string_view fn,
    std::initializer_list<std::pair<const char*, const torch::Tensor*>> tensors,
    const torch::Tensor& mask) {
  const auto& [first_name, first] = *tensors.begin();
  if (auto s = CheckFloat(fn, first_name, *first, 2); !s.ok()) return s;
  for (const auto& [name, t] : tensors) {
    if (auto s = CheckFloat(fn, name, *t, 2); !s.ok()) return s;
    if (auto s = CheckSameShape(fn, name, *t, first_name, *first); !s.ok()) return s;
  }
  return CheckMask(fn, mask, first_name, *first);
}

// [B] int64: last position with mask != 0, -1 when the row has none.
torch::Tensor LastIndex(const torch::Tensor& mask) {
  const int64_t t = mask.size(1);
  const torch::Tensor positions = torch::arange(1, t + 1, mask.options().dtype(torch::kLong));
  return (positions * (mask != 0).to(torch::kLong)).amax(1) - 1;
}

PolicyLossResult PolicyLossImpl(const torch::Tensor& logprobs, const torch::Tensor& old_logprobs,
                                const torch::Tensor& advantages, const torch::Tensor& mask,
                                const PolicyLossOptions& o, const torch::Tensor& is_weights) {
  // Padding may hold -inf - -inf = NaN: select, don't multiply, so ratio = 1 there.
  const torch::Tensor log_ratio = MaskedZero(logprobs - old_logprobs, mask);
  const torch::Tensor adv = MaskedZero(advantages, mask);
  const torch::Tensor ratio = torch::exp(log_ratio);
  const torch::Tensor unclipped = -adv * ratio;
  const torch::Tensor clipped = -adv * ratio.clamp(1.0 - o.clip_eps_low, 1.0 + o.clip_eps_high);
  torch::Tensor per_token = torch::max(unclipped, clipped);
  if (o.dual_clip) {
    per_token = torch::where(adv < 0, torch::min(per_token, -*o.dual_clip * adv), per_token);
  }
  if (is_weights.defined()) per_token = per_token * is_weights.detach();
  per_token = MaskedZero(per_token, mask);
  PolicyLossResult r;
  r.loss = AggregateLoss(per_token, mask, o.aggregation, o.max_length);
  r.per_token_loss = per_token;
  torch::NoGradGuard no_grad;
  r.clip_fraction = MaskedMean((clipped > unclipped).to(logprobs.scalar_type()), mask);
  r.approx_kl = 0.5 * MaskedMean(log_ratio * log_ratio, mask);
  return r;
}

ValueLossResult ValueLossImpl(const torch::Tensor& values, const torch::Tensor& old_values,
                              const torch::Tensor& returns, const torch::Tensor& mask,
                              const ValueLossOptions& o) {
  const torch::Tensor err = values - returns;
  const torch::Tensor unclipped = err * err;
  torch::Tensor loss = unclipped;
  ValueLossResult r;
  if (o.clip_range) {
    const torch::Tensor v_clipped =
        torch::clamp(values, old_values - *o.clip_range, old_values + *o.clip_range);
    const torch::Tensor clipped = (v_clipped - returns) * (v_clipped - returns);
    loss = torch::max(unclipped, clipped);
    torch::NoGradGuard no_grad;
    r.clip_fraction = MaskedMean((clipped > unclipped).to(values.scalar_type()), mask);
  } else {
    r.clip_fraction = torch::zeros({}, values.options());
  }
  r.loss = 0.5 * AggregateLoss(loss, mask, o.aggregation);
  return r;
}

}  // namespace

absl::StatusOr<PpoRewards> ComputePpoRewards(const torch::Tensor& logprobs,
                                             const torch::Tensor& ref_logprobs,
                                             const torch::Tensor& scores, const torch::Tensor& mask,
                                             const torch::Tensor& has_eos,
                                             const PpoRewardOptions& options) {
  constexpr absl::string_view kFn = "ComputePpoRewards";
  if (auto s =
          CheckTokenTensors(kFn, {{"logprobs", &logprobs}, {"ref_logprobs", &ref_logprobs}}, mask);
      !s.ok()) {
    return s;
  }
  if (auto s = CheckFloat(kFn, "scores", scores, 1); !s.ok()) return s;
  if (scores.size(0) != logprobs.size(0)) {
    return absl::InvalidArgumentError(absl::StrCat(kFn, ": scores has ", scores.size(0),
                                                   " rows but logprobs has ", logprobs.size(0)));
  }
  if (has_eos.defined() && (has_eos.dim() != 1 || has_eos.size(0) != logprobs.size(0))) {
    return absl::InvalidArgumentError(absl::StrCat(kFn, ": has_eos must be [", logprobs.size(0),
                                                   "], got ", ShapeString(has_eos)));
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<PpoRewards> {
    torch::NoGradGuard no_grad;
    PpoRewards r;
    r.scores = scores.detach().to(logprobs.scalar_type()).clone();
    if (options.missing_eos_penalty && has_eos.defined()) {
      r.scores = torch::where(has_eos != 0, r.scores, r.scores - *options.missing_eos_penalty);
    }
    if (options.score_clip) {
      r.scores = r.scores.clamp(options.score_clip->first, options.score_clip->second);
    }
    r.kl = KlPenalty(logprobs.detach(), ref_logprobs.detach(), options.kl_estimator, mask);
    r.non_score_rewards = -options.kl_coef * r.kl;
    r.last_index = LastIndex(mask);
    const torch::Tensor has_token = r.last_index >= 0;
    r.rewards = r.non_score_rewards.scatter_add(
        1, r.last_index.clamp_min(0).unsqueeze(1),
        torch::where(has_token, r.scores, torch::zeros_like(r.scores)).unsqueeze(1));
    return r;
  });
}

absl::StatusOr<GaeResult> ComputeGae(const torch::Tensor& rewards, const torch::Tensor& values,
                                     const torch::Tensor& mask, double gamma, double lambda) {
  constexpr absl::string_view kFn = "ComputeGae";
  if (auto s = CheckTokenTensors(kFn, {{"rewards", &rewards}, {"values", &values}}, mask);
      !s.ok()) {
    return s;
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<GaeResult> {
    torch::NoGradGuard no_grad;
    const torch::Tensor r = MaskedZero(rewards.detach(), mask);
    const torch::Tensor v = MaskedZero(values.detach(), mask);
    const int64_t t_len = r.size(1);
    torch::Tensor advantages = torch::zeros_like(r);
    torch::Tensor last = torch::zeros({r.size(0)}, r.options());
    for (int64_t t = t_len - 1; t >= 0; --t) {
      torch::Tensor delta = r.select(1, t) - v.select(1, t);
      if (t + 1 < t_len) delta = delta + gamma * v.select(1, t + 1);
      last = delta + (gamma * lambda) * last;
      advantages.select(1, t).copy_(last);
    }
    GaeResult g;
    g.advantages = MaskedZero(advantages, mask);
    g.returns = MaskedZero(advantages + v, mask);
    return g;
  });
}

absl::StatusOr<torch::Tensor> WhitenAdvantages(const torch::Tensor& advantages,
                                               const torch::Tensor& mask, bool unbiased) {
  constexpr absl::string_view kFn = "WhitenAdvantages";
  if (auto s = CheckTokenTensors(kFn, {{"advantages", &advantages}}, mask); !s.ok()) return s;
  return RunGuarded(kFn, [&]() -> absl::StatusOr<torch::Tensor> {
    return MaskedWhiten(advantages, mask, /*shift_mean=*/true, unbiased);
  });
}

absl::StatusOr<PolicyLossResult> PpoPolicyLoss(const torch::Tensor& logprobs,
                                               const torch::Tensor& old_logprobs,
                                               const torch::Tensor& advantages,
                                               const torch::Tensor& mask,
                                               const PolicyLossOptions& options,
                                               const torch::Tensor& is_weights) {
  constexpr absl::string_view kFn = "PpoPolicyLoss";
  if (is_weights.defined()) {
    if (auto s =
            CheckTokenTensors(kFn, {{"logprobs", &logprobs}, {"is_weights", &is_weights}}, mask);
        !s.ok()) {
      return s;
    }
  }
  if (auto s = CheckTokenTensors(
          kFn,
          {{"logprobs", &logprobs}, {"old_logprobs", &old_logprobs}, {"advantages", &advantages}},
          mask);
      !s.ok()) {
    return s;
  }
  if (options.dual_clip && !(*options.dual_clip > 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kFn, ": dual_clip must be > 1, got ", *options.dual_clip));
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<PolicyLossResult> {
    return PolicyLossImpl(logprobs, old_logprobs, advantages, mask, options, is_weights);
  });
}

absl::StatusOr<ValueLossResult> PpoValueLoss(const torch::Tensor& values,
                                             const torch::Tensor& old_values,
                                             const torch::Tensor& returns,
                                             const torch::Tensor& mask,
                                             const ValueLossOptions& options) {
  constexpr absl::string_view kFn = "PpoValueLoss";
  if (auto s = CheckTokenTensors(
          kFn, {{"values", &values}, {"old_values", &old_values}, {"returns", &returns}}, mask);
      !s.ok()) {
    return s;
  }
  return RunGuarded(kFn, [&]() -> absl::StatusOr<ValueLossResult> {
    return ValueLossImpl(values, old_values, returns, mask, options);
  });
}

absl::StatusOr<PpoLossResult> PpoLoss(const PpoLossInputs& in, const PpoLossOptions& options) {
  constexpr absl::string_view kFn = "PpoLoss";
  auto policy = PpoPolicyLoss(in.logprobs, in.old_logprobs, in.advantages, in.mask, options.policy,
                              in.is_weights);
  if (!policy.ok()) return policy.status();
  PpoLossResult r;
  r.loss = policy->loss;
  r.policy_loss = policy->loss.detach();
  r.policy_clip_fraction = policy->clip_fraction;
  r.approx_kl = policy->approx_kl;
  if (in.values.defined()) {
    const torch::Tensor& value_mask = in.value_mask.defined() ? in.value_mask : in.mask;
    auto value = PpoValueLoss(in.values, in.old_values, in.returns, value_mask, options.value);
    if (!value.ok()) return value.status();
    r.loss = r.loss + options.vf_coef * value->loss;
    r.value_loss = value->loss.detach();
    r.value_clip_fraction = value->clip_fraction;
  }
  if (in.entropy.defined()) {
    if (auto s = CheckSameShape(kFn, "entropy", in.entropy, "logprobs", in.logprobs); !s.ok())
      return s;
    auto entropy = RunGuarded(kFn, [&]() -> absl::StatusOr<torch::Tensor> {
      return AggregateLoss(in.entropy, in.mask, options.policy.aggregation,
                           options.policy.max_length);
    });
    if (!entropy.ok()) return entropy.status();
    if (options.entropy_coef != 0) r.loss = r.loss - options.entropy_coef * *entropy;
    r.entropy = entropy->detach();
  }
  return r;
}

}  // namespace rlhf::algo
