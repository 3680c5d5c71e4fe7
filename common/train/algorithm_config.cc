#include "common/train/algorithm_config.h"

#include <cmath>
#include <map>
#include <string>

#include "absl/strings/str_cat.h"

namespace rlhf::train {
namespace {

const std::map<std::string, std::pair<Algorithm, algo::DpoLossType>, std::less<>>&
AlgorithmsByName() {
  using algo::DpoLossType;
  static const auto* kNames =
      new std::map<std::string, std::pair<Algorithm, DpoLossType>, std::less<>>{
          {"ppo", {Algorithm::kPpo, DpoLossType::kSigmoid}},
          {"grpo", {Algorithm::kGrpo, DpoLossType::kSigmoid}},
          {"rloo", {Algorithm::kRloo, DpoLossType::kSigmoid}},
          {"reinforce_pp", {Algorithm::kReinforcePlusPlus, DpoLossType::kSigmoid}},
          {"dpo", {Algorithm::kDpo, DpoLossType::kSigmoid}},
          {"cdpo", {Algorithm::kDpo, DpoLossType::kSigmoid}},
          {"ipo", {Algorithm::kDpo, DpoLossType::kIpo}},
          {"robust_dpo", {Algorithm::kDpo, DpoLossType::kRobust}},
          {"hinge", {Algorithm::kDpo, DpoLossType::kHinge}},
          {"simpo", {Algorithm::kSimpo, DpoLossType::kSigmoid}},
          {"orpo", {Algorithm::kOrpo, DpoLossType::kSigmoid}},
          {"sft", {Algorithm::kSft, DpoLossType::kSigmoid}},
          {"reward_model", {Algorithm::kRewardModel, DpoLossType::kSigmoid}},
          {"kto", {Algorithm::kKto, DpoLossType::kSigmoid}},
      };
  return *kNames;
}

std::string KnownNames() {
  std::string names;
  for (const auto& [name, unused] : AlgorithmsByName()) {
    absl::StrAppend(&names, names.empty() ? "" : ", ", name);
  }
  return names;
}

absl::Status Bad(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat("train config: ", field, " must be ", rule));
}

}  // namespace

BatchKind BatchKindOf(Algorithm algorithm) {
  switch (algorithm) {
    case Algorithm::kPpo:
    case Algorithm::kGrpo:
    case Algorithm::kRloo:
    case Algorithm::kReinforcePlusPlus:
      return BatchKind::kPolicyGradient;
    case Algorithm::kDpo:
    case Algorithm::kSimpo:
    case Algorithm::kOrpo:
    case Algorithm::kRewardModel:
      return BatchKind::kPreference;
    case Algorithm::kSft:
      return BatchKind::kSft;
    case Algorithm::kKto:
      return BatchKind::kUnpaired;
  }
  return BatchKind::kSft;
}

std::string_view AlgorithmName(Algorithm algorithm) {
  for (const auto& [name, entry] : AlgorithmsByName()) {
    if (entry.first == algorithm) return name;
  }
  return "unknown";
}

absl::Status ValidateOptimizerOptions(const OptimizerOptions& o) {
  if (!(o.learning_rate >= 0) || !std::isfinite(o.learning_rate)) {
    return Bad("optimizer.learning_rate", ">= 0");
  }
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) {
    return Bad("optimizer.weight_decay", ">= 0");
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1)) return Bad("optimizer.adam_beta1", "in [0, 1)");
  if (!(o.beta2 >= 0 && o.beta2 < 1)) return Bad("optimizer.adam_beta2", "in [0, 1)");
  if (!(o.eps > 0) || !std::isfinite(o.eps)) return Bad("optimizer.adam_epsilon", "> 0");
  if (std::isnan(o.max_grad_norm)) return Bad("optimizer.max_grad_norm", "a number");
  return absl::OkStatus();
}

absl::StatusOr<AlgorithmConfig> AlgorithmConfigFor(std::string_view name) {
  auto known = AlgorithmsByName().find(name);
  if (known == AlgorithmsByName().end()) {
    return absl::InvalidArgumentError(absl::StrCat("train config: unknown algorithm \"",
                                                   std::string(name), "\"; expected one of ",
                                                   KnownNames()));
  }
  AlgorithmConfig config;
  config.algorithm_name = std::string(name);
  config.algorithm = known->second.first;
  config.dpo_loss_type = known->second.second;
  if (name == "cdpo") config.label_smoothing = 0.1;
  if (config.algorithm == Algorithm::kSimpo) config.beta = 2.0;
  return config;
}

absl::Status ValidateAlgorithmConfig(const AlgorithmConfig& config) {
  if (config.ppo_epochs < 1) return Bad("epochs", ">= 1");
  if (config.num_minibatches < 1) return Bad("num_minibatches", ">= 1");
  if (config.max_tokens_per_microbatch < 0) return Bad("max_tokens_per_microbatch", ">= 0");
  if (!(config.temperature > 0)) return Bad("temperature", "> 0");
  if (config.optimizer) {
    if (auto s = ValidateOptimizerOptions(*config.optimizer); !s.ok()) return s;
  }
  if (!(config.clip_eps_low >= 0) || !(config.clip_eps_high >= 0)) {
    return Bad("clip_eps_low and clip_eps_high", ">= 0");
  }
  if (!(config.tis_cap == 0 || config.tis_cap >= 1)) return Bad("tis_cap", "0 (off) or >= 1");
  const bool grpo = config.algorithm == Algorithm::kGrpo;
  if (!grpo && config.importance_sampling != algo::ImportanceSampling::kToken) {
    return Bad("importance_sampling", "token (sequence-level GSPO is grpo only)");
  }
  if (!grpo && config.policy_loss != algo::PolicyLossKind::kClip) {
    return Bad("policy_loss", "clip (cispo is grpo only)");
  }
  if (config.algorithm == Algorithm::kRloo && config.tis_cap != 0) {
    return Bad("tis_cap", "0 for rloo (its ratio is per sequence)");
  }
  const BatchKind kind = BatchKindOf(config.algorithm);
  const bool needs_beta =
      config.algorithm == Algorithm::kKto ||
      (kind == BatchKind::kPreference && config.algorithm != Algorithm::kRewardModel);
  if (needs_beta && !(config.beta > 0)) return Bad("beta", "> 0");
  if (config.algorithm == Algorithm::kKto &&
      (!(config.kto_desirable_weight > 0) || !(config.kto_undesirable_weight > 0))) {
    return Bad("kto_desirable_weight and kto_undesirable_weight", "> 0");
  }
  if (!(config.label_smoothing >= 0 && config.label_smoothing < 0.5)) {
    return Bad("label_smoothing", "in [0, 0.5)");
  }
  return absl::OkStatus();
}

}  // namespace rlhf::train
