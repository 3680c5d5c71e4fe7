#include "common/train/algorithm_config.h"

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"

namespace rlhf::train {
namespace {

using nlohmann::json;

const std::map<std::string, std::pair<Algorithm, algo::DpoLossType>>& AlgorithmsByName() {
  using algo::DpoLossType;
  static const auto* kNames = new std::map<std::string, std::pair<Algorithm, DpoLossType>>{
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

absl::Status ReadNumber(const json& root, const char* key, double* out) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm_config_json: \"", key, "\" must be a number"));
  }
  *out = it->get<double>();
  return absl::OkStatus();
}

absl::Status ReadOptional(const json& root, const char* key, std::optional<double>* out) {
  auto it = root.find(key);
  if (it == root.end()) return absl::OkStatus();
  if (it->is_null()) {
    out->reset();
    return absl::OkStatus();
  }
  double value = 0;
  if (auto s = ReadNumber(root, key, &value); !s.ok()) return s;
  *out = value;
  return absl::OkStatus();
}

absl::Status ReadInt(const json& root, const char* key, int64_t* out) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer() || it->get<int64_t>() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm_config_json: \"", key, "\" must be an integer >= 1"));
  }
  *out = it->get<int64_t>();
  return absl::OkStatus();
}

absl::Status ReadBool(const json& root, const char* key, bool* out) {
  auto it = root.find(key);
  if (it == root.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_boolean()) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm_config_json: \"", key, "\" must be true or false"));
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

absl::Status ReadAggregation(const json& root, AlgorithmConfig* config) {
  auto it = root.find("loss_aggregation");
  if (it == root.end() || it->is_null()) return absl::OkStatus();
  const std::string value = it->is_string() ? it->get<std::string>() : "";
  if (value == "token_mean") {
    config->aggregation = algo::LossAggregation::kTokenMean;
  } else if (value == "sequence_mean") {
    config->aggregation = algo::LossAggregation::kSequenceMean;
  } else if (value == "sequence_sum") {
    config->aggregation = algo::LossAggregation::kSequenceSum;
  } else {
    return absl::InvalidArgumentError(
        "algorithm_config_json: \"loss_aggregation\" must be one of token_mean, "
        "sequence_mean, sequence_sum");
  }
  return absl::OkStatus();
}

absl::Status ReadDpoLossType(const json& root, AlgorithmConfig* config) {
  auto it = root.find("loss_type");
  if (config->algorithm != Algorithm::kDpo || it == root.end() || it->is_null()) {
    return absl::OkStatus();
  }
  const std::string value = it->is_string() ? it->get<std::string>() : "";
  if (value == "sigmoid") {
    config->dpo_loss_type = algo::DpoLossType::kSigmoid;
  } else if (value == "ipo") {
    config->dpo_loss_type = algo::DpoLossType::kIpo;
  } else if (value == "hinge") {
    config->dpo_loss_type = algo::DpoLossType::kHinge;
  } else if (value == "robust") {
    config->dpo_loss_type = algo::DpoLossType::kRobust;
  } else {
    return absl::InvalidArgumentError(
        "algorithm_config_json: \"loss_type\" must be one of sigmoid, ipo, hinge, robust");
  }
  return absl::OkStatus();
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

absl::StatusOr<AlgorithmConfig> ParseAlgorithmConfig(std::string_view text) {
  json root = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError("algorithm_config_json is not a JSON object");
  }
  auto it = root.find("algorithm");
  if (it == root.end() || !it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "algorithm_config_json: \"algorithm\" (a string) is missing; one of ", KnownNames()));
  }
  AlgorithmConfig config;
  config.algorithm_name = it->get<std::string>();
  auto known = AlgorithmsByName().find(config.algorithm_name);
  if (known == AlgorithmsByName().end()) {
    return absl::InvalidArgumentError(absl::StrCat("algorithm_config_json: unknown algorithm \"",
                                                   config.algorithm_name, "\"; expected one of ",
                                                   KnownNames()));
  }
  config.algorithm = known->second.first;
  config.dpo_loss_type = known->second.second;
  if (config.algorithm_name == "cdpo") config.label_smoothing = 0.1;
  if (config.algorithm == Algorithm::kSimpo) config.beta = 2.0;

  double clip_eps = -1;
  for (absl::Status s : {
           ReadInt(root, "ppo_epochs", &config.ppo_epochs),
           ReadInt(root, "num_minibatches", &config.num_minibatches),
           ReadNumber(root, "temperature", &config.temperature),
           ReadOptional(root, "learning_rate", &config.learning_rate),
           ReadOptional(root, "max_grad_norm", &config.max_grad_norm),
           ReadNumber(root, "clip_eps", &clip_eps),
           ReadNumber(root, "clip_eps_low", &config.clip_eps_low),
           ReadNumber(root, "clip_eps_high", &config.clip_eps_high),
           ReadOptional(root, "dual_clip", &config.dual_clip),
           ReadAggregation(root, &config),
           ReadNumber(root, "vf_coef", &config.vf_coef),
           ReadOptional(root, "value_clip", &config.value_clip),
           ReadNumber(root, "entropy_coef", &config.entropy_coef),
           ReadNumber(root, "kl_coef", &config.kl_coef),
           ReadDpoLossType(root, &config),
           ReadNumber(root, "beta", &config.beta),
           ReadNumber(root, "label_smoothing", &config.label_smoothing),
           ReadBool(root, "reference_free", &config.reference_free),
           ReadNumber(root, "simpo_gamma", &config.simpo_gamma),
           ReadNumber(root, "desirable_weight", &config.kto_desirable_weight),
           ReadNumber(root, "undesirable_weight", &config.kto_undesirable_weight),
       }) {
    if (!s.ok()) return s;
  }
  if (clip_eps >= 0 && !root.contains("clip_eps_low")) config.clip_eps_low = clip_eps;
  if (clip_eps >= 0 && !root.contains("clip_eps_high")) config.clip_eps_high = clip_eps;
  if (!(config.temperature > 0)) {
    return absl::InvalidArgumentError("algorithm_config_json: \"temperature\" must be > 0");
  }
  if (config.learning_rate && !(*config.learning_rate >= 0)) {
    return absl::InvalidArgumentError("algorithm_config_json: \"learning_rate\" must be >= 0");
  }
  if (config.clip_eps_low < 0 || config.clip_eps_high < 0) {
    return absl::InvalidArgumentError("algorithm_config_json: clip_eps must be >= 0");
  }
  if (!(config.beta > 0) && config.algorithm != Algorithm::kSft &&
      config.algorithm != Algorithm::kRewardModel) {
    if (BatchKindOf(config.algorithm) == BatchKind::kPreference ||
        config.algorithm == Algorithm::kKto) {
      return absl::InvalidArgumentError("algorithm_config_json: \"beta\" must be > 0");
    }
  }
  if (!(config.kto_desirable_weight > 0) || !(config.kto_undesirable_weight > 0)) {
    return absl::InvalidArgumentError(
        "algorithm_config_json: \"desirable_weight\" and \"undesirable_weight\" must be > 0");
  }
  if (config.label_smoothing < 0 || config.label_smoothing >= 0.5) {
    return absl::InvalidArgumentError(
        "algorithm_config_json: \"label_smoothing\" must be in [0, 0.5)");
  }
  return config;
}

}  // namespace rlhf::train
