#include "common/jobs/train_config.h"

#include <algorithm>
#include <string>

#include "common/jobs/algorithms.h"

namespace rlhf::jobs {

double WarmupLearningRate(const v1::OptimizerSpec& optimizer, int64_t policy_version) {
  const double lr = optimizer.learning_rate();
  const int64_t warmup = optimizer.warmup_steps();
  if (warmup <= 0) return lr;
  return lr * std::min(1.0, static_cast<double>(policy_version + 1) / static_cast<double>(warmup));
}

bool JobUsesReference(const v1::JobSpec& spec) {
  const AlgorithmFacts* facts = FindAlgorithm(spec.algorithm());
  if (facts == nullptr) return true;  // unknown: refused elsewhere, never assumed away
  if (!facts->online) return facts->reference_logprobs;
  if (facts->kl == KlPlacement::kNone) return false;  // rejection_sampling: SFT steps
  return spec.kl().coef() != 0 || spec.kl().adaptive();
}

v1::Precision PrecisionOf(const v1::JobSpec& spec) {
  return spec.runtime().precision() == "bf16-mixed" ? v1::PRECISION_BF16_MIXED : v1::PRECISION_FP32;
}

namespace {

// ppo.loss_aggregation (validated: token_mean, sequence_mean or constant_normalizer).
v1::LossAggregation AggregationOf(const std::string& name) {
  if (name == "sequence_mean") return v1::LOSS_AGGREGATION_SEQUENCE_MEAN;
  if (name == "constant_normalizer") return v1::LOSS_AGGREGATION_CONSTANT_NORMALIZER;
  return v1::LOSS_AGGREGATION_TOKEN_MEAN;
}

}  // namespace

v1::TrainConfig TrainConfigForJob(const v1::JobSpec& spec, int64_t rows, int64_t policy_version) {
  v1::TrainConfig config;
  const std::string& algorithm = spec.algorithm();
  const int64_t minibatches = std::max<int64_t>(
      1, spec.training().batch_size() / std::max<int64_t>(1, spec.training().minibatch_size()));
  config.set_num_minibatches(std::min(minibatches, std::max<int64_t>(rows, 1)));
  config.set_epochs(1);
  config.set_temperature(1.0);
  config.set_max_tokens_per_microbatch(spec.training().max_tokens_per_microbatch());
  config.set_gradient_checkpointing(spec.training().gradient_checkpointing());
  config.set_precision(PrecisionOf(spec));

  const v1::OptimizerSpec& opt = spec.optimizer();
  v1::OptimizerConfig* optimizer = config.mutable_optimizer();
  optimizer->set_learning_rate(WarmupLearningRate(opt, policy_version));
  optimizer->set_weight_decay(opt.weight_decay());
  optimizer->set_adam_beta1(opt.adam_beta1());
  optimizer->set_adam_beta2(opt.adam_beta2());
  optimizer->set_adam_epsilon(opt.adam_epsilon());
  optimizer->set_max_grad_norm(opt.grad_clip());

  const AlgorithmFacts* facts = FindAlgorithm(algorithm);
  if (facts == nullptr) return config;  // no algorithm: the actor refuses it by name
  config.set_algorithm(std::string(facts->trainer_name));
  if (facts->online) {
    const v1::PpoSpec& ppo = spec.ppo();
    config.set_epochs(spec.training().ppo_epochs());
    config.set_temperature(spec.generation().temperature());  // as the rollout sampled
    config.set_clip_eps_low(ppo.clip_range());
    config.set_clip_eps_high(ppo.clip_range_high());
    config.set_loss_aggregation(AggregationOf(ppo.loss_aggregation()));
    config.set_importance_sampling(ppo.importance_sampling_level() == "sequence"
                                       ? v1::IMPORTANCE_SAMPLING_SEQUENCE
                                       : v1::IMPORTANCE_SAMPLING_TOKEN);
    config.set_policy_loss(ppo.policy_loss() == "cispo" ? v1::POLICY_LOSS_CISPO
                                                        : v1::POLICY_LOSS_CLIP);
    config.set_tis_cap(ppo.tis_cap());
    config.set_vf_coef(ppo.vf_coef());
    config.set_value_clip(ppo.clip_range_value());
    config.set_entropy_coef(ppo.entropy_coef());
    config.set_kl_coef(facts->kl == KlPlacement::kLoss ? spec.kl().coef() : 0.0);
  } else if (facts->id != JobAlgorithm::kSft) {
    const v1::PreferenceSpec& p = spec.preference();
    config.set_dpo_loss_type(facts->id == JobAlgorithm::kIpo ? "ipo" : p.loss_type());
    config.set_beta(facts->id == JobAlgorithm::kOrpo ? p.orpo_lambda() : p.beta());
    config.set_label_smoothing(p.label_smoothing());
    config.set_simpo_gamma(p.simpo_gamma());
    config.set_kto_desirable_weight(p.kto_desirable_weight());
    config.set_kto_undesirable_weight(p.kto_undesirable_weight());
  }
  return config;
}

}  // namespace rlhf::jobs
