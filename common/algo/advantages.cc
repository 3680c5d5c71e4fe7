#include "common/algo/advantages.h"

#include "absl/strings/str_cat.h"
#include "common/algo/grpo.h"
#include "common/algo/ppo.h"

namespace rlhf::algo {

absl::StatusOr<AdvantageResult> ComputeAdvantages(const AdvantageInputs& in,
                                                  const AdvantageOptions& options) {
  const bool penalised_rewards = options.estimator == AdvantageEstimator::kGae ||
                                 options.estimator == AdvantageEstimator::kReinforcePlusPlus ||
                                 options.estimator == AdvantageEstimator::kPerToken;
  PpoRewardOptions reward_options;
  reward_options.kl_coef = penalised_rewards ? options.kl_coef : 0.0;
  reward_options.kl_estimator = options.kl_estimator;
  auto shaped = ComputePpoRewards(in.logprobs, in.ref_logprobs, in.scores, in.mask, in.has_eos,
                                  reward_options);
  if (!shaped.ok()) return shaped.status();
  AdvantageResult out;
  out.kl = shaped->kl;
  out.non_score_rewards = shaped->non_score_rewards;
  const torch::Tensor token_mask = in.mask.to(in.logprobs.scalar_type());
  switch (options.estimator) {
    case AdvantageEstimator::kGae: {
      if (!in.values.defined()) {
        return absl::InvalidArgumentError("ComputeAdvantages: kGae needs the critic's values");
      }
      auto gae = ComputeGae(shaped->rewards, in.values, in.mask, options.gamma, options.lambda);
      if (!gae.ok()) return gae.status();
      out.advantages = gae->advantages;
      out.returns = gae->returns;
      if (options.whiten) {
        auto whitened = WhitenAdvantages(out.advantages, in.mask);
        if (!whitened.ok()) return whitened.status();
        out.advantages = *whitened;
      }
      return out;
    }
    case AdvantageEstimator::kReinforcePlusPlus: {
      auto rpp = ReinforcePlusPlusAdvantages(shaped->rewards, in.mask, options.gamma);
      if (!rpp.ok()) return rpp.status();
      out.advantages = rpp->advantages;
      return out;
    }
    case AdvantageEstimator::kPerToken:
      out.advantages = shaped->rewards * token_mask;
      return out;
    case AdvantageEstimator::kGroup: {
      auto group = GrpoAdvantages(in.scores, options.group_size);
      if (!group.ok()) return group.status();
      out.advantages = group->advantages.unsqueeze(1) * token_mask;
      return out;
    }
    case AdvantageEstimator::kLeaveOneOut: {
      RlooAdvantageOptions rloo;
      rloo.beta = options.kl_coef;
      auto loo = RlooAdvantages(in.scores, options.group_size, shaped->kl.sum(1), rloo);
      if (!loo.ok()) return loo.status();
      out.advantages = loo->unsqueeze(1) * token_mask;
      return out;
    }
  }
  return absl::InvalidArgumentError("ComputeAdvantages: unknown estimator");
}

}  // namespace rlhf::algo
