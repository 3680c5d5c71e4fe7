#include "common/serving/actor/train_config_proto.h"

#include "absl/strings/str_cat.h"

namespace rlhf::actor {
namespace {

absl::StatusOr<algo::LossAggregation> Aggregation(v1::LossAggregation proto) {
  switch (proto) {
    case v1::LOSS_AGGREGATION_TOKEN_MEAN:
      return algo::LossAggregation::kTokenMean;
    case v1::LOSS_AGGREGATION_SEQUENCE_MEAN:
      return algo::LossAggregation::kSequenceMean;
    case v1::LOSS_AGGREGATION_SEQUENCE_SUM:
      return algo::LossAggregation::kSequenceSum;
    case v1::LOSS_AGGREGATION_CONSTANT_NORMALIZER:
      return algo::LossAggregation::kConstantNormalizer;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("train config: unknown loss_aggregation ", static_cast<int>(proto)));
}

absl::StatusOr<algo::DpoLossType> DpoLossType(const std::string& name) {
  if (name.empty() || name == "sigmoid") return algo::DpoLossType::kSigmoid;
  if (name == "ipo") return algo::DpoLossType::kIpo;
  if (name == "hinge") return algo::DpoLossType::kHinge;
  if (name == "robust") return algo::DpoLossType::kRobust;
  return absl::InvalidArgumentError(
      absl::StrCat("train config: dpo_loss_type must be one of sigmoid, ipo, hinge, robust; got \"",
                   name, "\""));
}

}  // namespace

absl::StatusOr<train::Precision> PrecisionFromProto(v1::Precision precision) {
  switch (precision) {
    case v1::PRECISION_FP32:
      return train::Precision::kFp32;
    case v1::PRECISION_BF16_MIXED:
      return train::Precision::kBf16Mixed;
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("precision: unknown value ", static_cast<int>(precision)));
}

absl::StatusOr<train::AlgorithmConfig> AlgorithmConfigFromProto(const v1::TrainConfig& proto) {
  auto config = train::AlgorithmConfigFor(proto.algorithm());
  if (!config.ok()) return config.status();
  config->ppo_epochs = proto.epochs() == 0 ? 1 : proto.epochs();
  config->num_minibatches = proto.num_minibatches() == 0 ? 1 : proto.num_minibatches();
  config->temperature = proto.temperature() == 0 ? 1.0 : proto.temperature();
  config->max_tokens_per_microbatch = proto.max_tokens_per_microbatch();
  config->gradient_checkpointing = proto.gradient_checkpointing();
  auto precision = PrecisionFromProto(proto.precision());
  if (!precision.ok()) return precision.status();
  config->precision = *precision;
  if (proto.has_optimizer()) {
    const v1::OptimizerConfig& o = proto.optimizer();
    config->optimizer = train::OptimizerOptions{.learning_rate = o.learning_rate(),
                                                .beta1 = o.adam_beta1(),
                                                .beta2 = o.adam_beta2(),
                                                .eps = o.adam_epsilon(),
                                                .weight_decay = o.weight_decay(),
                                                .max_grad_norm = o.max_grad_norm()};
  }
  if (train::BatchKindOf(config->algorithm) == train::BatchKind::kPolicyGradient) {
    config->clip_eps_low = proto.clip_eps_low();
    config->clip_eps_high = proto.clip_eps_high();
    if (proto.has_dual_clip()) config->dual_clip = proto.dual_clip();
    auto aggregation = Aggregation(proto.loss_aggregation());
    if (!aggregation.ok()) return aggregation.status();
    config->aggregation = *aggregation;
    config->vf_coef = proto.vf_coef();
    config->value_clip =
        proto.has_value_clip() ? std::optional<double>(proto.value_clip()) : std::nullopt;
    config->entropy_coef = proto.entropy_coef();
    config->kl_coef = proto.kl_coef();
    config->tis_cap = proto.tis_cap();
    switch (proto.importance_sampling()) {
      case v1::IMPORTANCE_SAMPLING_TOKEN:
        break;
      case v1::IMPORTANCE_SAMPLING_SEQUENCE:
        config->importance_sampling = algo::ImportanceSampling::kSequence;
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("train config: unknown importance_sampling ",
                         static_cast<int>(proto.importance_sampling())));
    }
    switch (proto.policy_loss()) {
      case v1::POLICY_LOSS_CLIP:
        break;
      case v1::POLICY_LOSS_CISPO:
        config->policy_loss = algo::PolicyLossKind::kCispo;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("train config: unknown policy_loss ",
                                                       static_cast<int>(proto.policy_loss())));
    }
  } else if (config->algorithm != train::Algorithm::kSft &&
             config->algorithm != train::Algorithm::kRewardModel) {
    if (config->algorithm == train::Algorithm::kDpo && !proto.dpo_loss_type().empty()) {
      auto loss_type = DpoLossType(proto.dpo_loss_type());
      if (!loss_type.ok()) return loss_type.status();
      config->dpo_loss_type = *loss_type;
    }
    config->beta = proto.beta();
    config->label_smoothing = proto.label_smoothing();
    config->reference_free = proto.reference_free();
    config->simpo_gamma = proto.simpo_gamma();
    config->kto_desirable_weight = proto.kto_desirable_weight();
    config->kto_undesirable_weight = proto.kto_undesirable_weight();
  }
  if (auto s = train::ValidateAlgorithmConfig(*config); !s.ok()) return s;
  return config;
}

}  // namespace rlhf::actor
