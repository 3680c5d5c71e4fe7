// PolicyTrainer's policy-gradient step: the loss each online algorithm trains with, the
// same functions tests/golden checks against TRL:
//   ppo, reinforce_pp: algo::PpoLoss (clipped surrogate, + clipped value loss with a
//                      critic, + entropy bonus);
//   grpo:              algo::GrpoLoss (TRL GRPOTrainer, in-loss k3 KL with kl_coef);
//   rloo:              algo::RlooLoss (TRL RLOOTrainer, sequence-level ratio).

#include "absl/strings/str_cat.h"
#include "common/algo/grpo.h"
#include "common/algo/importance_weights.h"
#include "common/algo/ppo.h"
#include "common/jobs/metric_names.h"
#include "common/model/token_logprobs.h"
#include "common/status/torch_status.h"
#include "common/train/policy_trainer.h"

namespace rlhf::train {
namespace {

// The token-level aggregation of the config as a GRPO loss type (TRL loss_type).
absl::StatusOr<algo::GrpoLossType> GrpoLossTypeOf(algo::LossAggregation aggregation) {
  switch (aggregation) {
    case algo::LossAggregation::kTokenMean:
      return algo::GrpoLossType::kBnpo;  // = TRL "dapo" with one minibatch per step
    case algo::LossAggregation::kSequenceMean:
      return algo::GrpoLossType::kGrpo;
    case algo::LossAggregation::kConstantNormalizer:
      return algo::GrpoLossType::kDrGrpo;
    case algo::LossAggregation::kSequenceSum:
      break;
  }
  return absl::InvalidArgumentError(
      "train config: grpo aggregates its loss by token_mean, sequence_mean or a constant "
      "normalizer (dr_grpo)");
}

}  // namespace

absl::StatusOr<TrainStats> PolicyTrainer::TrainPolicyGradient(const PolicyGradientInputs& inputs,
                                                              const AlgorithmConfig& config) {
  if (auto s = RequirePolicy("TrainPolicyGradient"); !s.ok()) return s;
  if (BatchKindOf(config.algorithm) != BatchKind::kPolicyGradient) {
    return absl::InvalidArgumentError(absl::StrCat("algorithm \"", config.algorithm_name,
                                                   "\" does not train on a policy-gradient batch"));
  }
  if (config.algorithm != Algorithm::kGrpo && config.kl_coef != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("train config: kl_coef (an in-loss KL) applies to grpo only; ",
                     config.algorithm_name, " takes its KL penalty in the rewards"));
  }
  if (auto s = BeginStep(config); !s.ok()) return s;
  return CatchTorchErrors("TrainPolicyGradient",
                          [&] { return TrainPolicyGradientImpl(inputs, config); });
}

absl::StatusOr<TrainStats> PolicyTrainer::TrainPolicyGradientImpl(
    const PolicyGradientInputs& inputs, const AlgorithmConfig& config) {
  auto padded = BuildPaddedBatch(inputs.batch, model_->config().vocab_size, options_.pad_token_id);
  if (!padded.ok()) return padded.status();
  // Without old log-probs the step is one on-policy step (one epoch, one minibatch, the
  // samples from this very policy version): the old policy is the current one, so they are
  // the forward's own log-probs, detached (TRL GRPOTrainer with num_iterations=1), and the
  // coordinator saves a whole Evaluate pass.
  const bool on_policy = !inputs.old_logprobs.defined();
  if (on_policy && (config.ppo_epochs != 1 || config.num_minibatches != 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "old_logprobs is missing; it may be left out only for one on-policy step (1 epoch, 1 "
        "minibatch), and this config takes ",
        config.ppo_epochs * config.num_minibatches, " optimizer steps"));
  }
  absl::StatusOr<torch::Tensor> old_logprobs = torch::Tensor();
  if (!on_policy)
    old_logprobs = ScatterResponseTokens(inputs.old_logprobs, *padded, "old_logprobs");
  if (!old_logprobs.ok()) return old_logprobs.status();
  auto advantages = ScatterResponseTokens(inputs.advantages, *padded, "advantages");
  if (!advantages.ok()) return advantages.status();
  const bool critic = inputs.returns.defined() && inputs.returns.numel() > 0;
  torch::Tensor returns, old_values, ref_logprobs;
  if (critic) {
    if (!model_->has_value_head()) {
      return absl::InvalidArgumentError("returns given but the policy has no value head");
    }
    auto r = ScatterResponseTokens(inputs.returns, *padded, "returns");
    if (!r.ok()) return r.status();
    auto v = ScatterResponseTokens(inputs.old_values, *padded, "old_values");
    if (!v.ok()) return v.status();
    returns = *r;
    old_values = *v;
  }
  if (config.kl_coef != 0) {
    auto ref = ScatterResponseTokens(inputs.ref_logprobs, *padded, "ref_logprobs");
    if (!ref.ok()) return ref.status();
    ref_logprobs = *ref;
  }
  torch::Tensor rollout_logprobs;  // truncated importance sampling against the sampler
  if (config.tis_cap > 0) {
    auto sampled = ScatterResponseTokens(inputs.rollout_logprobs, *padded, "rollout_logprobs");
    if (!sampled.ok()) return sampled.status();
    rollout_logprobs = *sampled;
  }
  algo::GrpoLossType grpo_loss_type = algo::GrpoLossType::kBnpo;
  if (config.algorithm == Algorithm::kGrpo) {
    auto type = GrpoLossTypeOf(config.aggregation);
    if (!type.ok()) return type.status();
    grpo_loss_type = *type;
  }
  const torch::Device device = model_->device();
  // A micro-batch's share of a mean over tokens or over sequences.
  const bool token_mean = config.aggregation == algo::LossAggregation::kTokenMean;
  return RunMinibatches(
      ShapesOf(*padded, padded->input_ids.size(0)), config,
      [&](const MicroBatch& micro, StatsAccumulator& stats) -> absl::StatusOr<torch::Tensor> {
        const std::vector<int64_t>& rows = micro.rows;
        const double share = token_mean ? micro.token_share : micro.row_share;
        PaddedBatch mb = SelectRows(*padded, rows);
        const torch::Tensor index = torch::tensor(rows, torch::kInt64);
        const int64_t width = mb.response_mask.size(1);
        auto select = [&](const torch::Tensor& grid) {
          return grid.index_select(0, index).slice(1, 0, width).to(device);
        };
        auto out = Forward(mb, config.temperature, /*entropy=*/true);
        if (!out.ok()) return out.status();
        const torch::Tensor mask = mb.response_mask.to(device);
        const torch::Tensor old = on_policy ? out->logprobs.detach() : select(*old_logprobs);
        const torch::Tensor entropy =
            algo::AggregateLoss(config.entropy_coef != 0 ? out->entropy : out->entropy.detach(),
                                mask, config.aggregation);
        stats.Add(metric::kEntropy, entropy);
        stats.Add(metric::kApproxKl, 0.5 * algo::MaskedMean((out->logprobs - old).square(), mask));
        torch::Tensor is_weights;
        if (config.tis_cap > 0) {
          auto w = algo::TruncatedIsWeights(old.detach(), select(rollout_logprobs), mask,
                                            config.tis_cap);
          if (!w.ok()) return w.status();
          is_weights = *w;
          stats.Add(metric::kTisWeight, algo::MaskedMean(is_weights, mask));
        }
        torch::Tensor objective;  // the algorithm's loss (PPO's includes the value loss)
        if (config.algorithm == Algorithm::kGrpo) {
          algo::GrpoLossOptions grpo;
          grpo.loss_type = grpo_loss_type;
          grpo.beta = config.kl_coef;
          grpo.epsilon_low = config.clip_eps_low;
          grpo.epsilon_high = config.clip_eps_high;
          grpo.max_completion_length = micro.minibatch_width;  // Dr. GRPO's constant
          grpo.importance_sampling = config.importance_sampling;
          grpo.policy_loss = config.policy_loss;
          // GRPO's advantage is one per sequence, broadcast over its tokens on the wire.
          auto loss = algo::GrpoLoss(
              {.logprobs = out->logprobs,
               .old_logprobs = old,
               .ref_logprobs = config.kl_coef != 0 ? select(ref_logprobs) : torch::Tensor(),
               .advantages = algo::MaskedRowMean(select(*advantages), mask),
               .mask = mask,
               .is_weights = is_weights},
              grpo);
          if (!loss.ok()) return loss.status();
          objective = loss->loss * share;
          stats.Add(metric::kPolicyLoss, loss->loss);
          stats.Add(metric::kKl, loss->mean_kl);
          stats.Add(metric::kClipFraction, loss->clip_ratio_region);
        } else if (config.algorithm == Algorithm::kRloo) {
          auto loss =
              algo::RlooLoss(out->logprobs, old, algo::MaskedRowMean(select(*advantages), mask),
                             mask, config.clip_eps_low, config.clip_eps_high);
          if (!loss.ok()) return loss.status();
          objective = loss->loss * micro.row_share;  // a mean over sequences
          stats.Add(metric::kPolicyLoss, loss->loss);
          stats.Add(metric::kClipFraction, loss->clip_ratio_region);
        } else {  // ppo, reinforce_pp
          algo::PpoLossInputs ppo{.logprobs = out->logprobs,
                                  .old_logprobs = old,
                                  .advantages = select(*advantages),
                                  .mask = mask,
                                  .is_weights = is_weights};
          if (critic) {
            ppo.values = out->values.slice(1, 0, width).to(torch::kFloat32);
            ppo.old_values = select(old_values);
            ppo.returns = select(returns);
          }
          algo::PpoLossOptions options;
          options.policy.clip_eps_low = config.clip_eps_low;
          options.policy.clip_eps_high = config.clip_eps_high;
          options.policy.dual_clip = config.dual_clip;
          options.policy.aggregation = config.aggregation;
          options.policy.max_length = micro.minibatch_width;
          options.value.clip_range = config.value_clip;
          options.value.aggregation = config.aggregation;
          options.vf_coef = config.vf_coef;
          auto loss = algo::PpoLoss(ppo, options);
          if (!loss.ok()) return loss.status();
          stats.Add(metric::kPolicyLoss, loss->policy_loss);
          stats.Add(metric::kClipFraction, loss->policy_clip_fraction);
          if (critic) {
            stats.Add(metric::kValueLoss, loss->value_loss);
            stats.Add(metric::kValueClipFraction, loss->value_clip_fraction);
          }
          objective = loss->loss * share;
        }
        if (config.entropy_coef == 0) return objective;
        return objective - config.entropy_coef * share * entropy;
      });
}

}  // namespace rlhf::train
