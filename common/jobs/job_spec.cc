#include "common/jobs/job_spec.h"

#include <array>
#include <fstream>
#include <sstream>
#include <utility>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/jobs/algorithms.h"
#include "common/jobs/spec_checks.h"

namespace rlhf::jobs {
namespace {

absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// Sets an unset `optional` scalar to its documented default.
#define RLHF_DEFAULT(message, field, value) \
  if (!(message)->has_##field()) (message)->set_##field(value)

}  // namespace

bool IsKnownAlgorithm(std::string_view algorithm) { return FindAlgorithm(algorithm) != nullptr; }

bool IsOnlineRlAlgorithm(std::string_view algorithm) {
  const AlgorithmFacts* facts = FindAlgorithm(algorithm);
  return facts != nullptr && facts->online;
}

absl::StatusOr<v1::JobSpec> ParseJobSpecJson(std::string_view json, std::string_view source) {
  v1::JobSpec spec;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  auto status = google::protobuf::util::JsonStringToMessage(std::string(json), &spec, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Absl(source), ": malformed job spec JSON: ",
                     std::string(status.message().data(), status.message().size())));
  }
  return spec;
}

absl::StatusOr<std::string> JobSpecToJson(const v1::JobSpec& spec) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(spec, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat(
        "cannot print job spec: ", std::string(status.message().data(), status.message().size())));
  }
  return json;
}

void ApplyJobSpecDefaults(v1::JobSpec* spec) {
  const std::string& algorithm = spec->algorithm();
  // An unknown algorithm gets PPO's defaults; ValidateJobSpec names it.
  const AlgorithmFacts& facts =
      FindAlgorithm(algorithm) != nullptr ? *FindAlgorithm(algorithm) : AllAlgorithms()[0];
  v1::ModelsSpec* models = spec->mutable_models();
  if (models->reference_dir().empty()) models->set_reference_dir(models->policy_dir());

  v1::OptimizerSpec* optimizer = spec->mutable_optimizer();
  RLHF_DEFAULT(optimizer, learning_rate, facts.default_learning_rate);
  RLHF_DEFAULT(optimizer, weight_decay, 0.0);
  RLHF_DEFAULT(optimizer, adam_beta1, 0.9);
  RLHF_DEFAULT(optimizer, adam_beta2, 0.999);
  RLHF_DEFAULT(optimizer, adam_epsilon, 1e-8);
  RLHF_DEFAULT(optimizer, grad_clip, 1.0);
  RLHF_DEFAULT(optimizer, warmup_steps, 0);

  v1::TrainingSpec* training = spec->mutable_training();
  RLHF_DEFAULT(training, batch_size, 8);
  RLHF_DEFAULT(training, minibatch_size, training->batch_size());
  RLHF_DEFAULT(training, ppo_epochs, 4);
  RLHF_DEFAULT(training, iterations, 0);
  RLHF_DEFAULT(training, max_tokens_per_microbatch, 0);
  RLHF_DEFAULT(training, gradient_checkpointing, false);

  v1::PpoSpec* ppo = spec->mutable_ppo();
  RLHF_DEFAULT(ppo, gamma, 1.0);
  RLHF_DEFAULT(ppo, gae_lambda, 0.95);
  RLHF_DEFAULT(ppo, clip_range, 0.2);
  RLHF_DEFAULT(ppo, clip_range_value, 0.2);
  RLHF_DEFAULT(ppo, vf_coef, 0.1);
  RLHF_DEFAULT(ppo, entropy_coef, 0.0);
  RLHF_DEFAULT(ppo, whiten_advantages, true);
  if (ppo->importance_sampling_level().empty()) ppo->set_importance_sampling_level("token");
  if (ppo->loss_aggregation().empty()) ppo->set_loss_aggregation("token_mean");
  if (ppo->policy_loss().empty()) ppo->set_policy_loss("clip");
  // CISPO's clip_range_high caps the importance weight itself, not 1 + epsilon.
  RLHF_DEFAULT(ppo, clip_range_high, ppo->policy_loss() == "cispo" ? 5.0 : ppo->clip_range());
  RLHF_DEFAULT(ppo, tis_cap, 0.0);

  v1::KlSpec* kl = spec->mutable_kl();
  RLHF_DEFAULT(kl, coef, facts.id == JobAlgorithm::kDistill ? 1.0 : 0.05);
  RLHF_DEFAULT(kl, adaptive, false);
  RLHF_DEFAULT(kl, target, 6.0);
  RLHF_DEFAULT(kl, horizon, 10000);
  if (kl->estimator().empty()) kl->set_estimator("k1");

  v1::GenerationSpec* generation = spec->mutable_generation();
  RLHF_DEFAULT(generation, max_prompt_tokens, 512);
  RLHF_DEFAULT(generation, max_response_tokens, 256);
  RLHF_DEFAULT(generation, temperature, 1.0);
  RLHF_DEFAULT(generation, top_p, 1.0);
  RLHF_DEFAULT(generation, top_k, 0);
  RLHF_DEFAULT(generation, samples_per_prompt, facts.default_samples_per_prompt);
  RLHF_DEFAULT(generation, dynamic_sampling, false);
  RLHF_DEFAULT(generation, max_sampling_rounds, 4);

  v1::PreferenceSpec* preference = spec->mutable_preference();
  RLHF_DEFAULT(preference, beta, facts.default_beta);
  if (preference->loss_type().empty()) {
    preference->set_loss_type(algorithm == "ipo" ? "ipo" : "sigmoid");
  }
  RLHF_DEFAULT(preference, label_smoothing, 0.0);
  RLHF_DEFAULT(preference, kto_desirable_weight, 1.0);
  RLHF_DEFAULT(preference, kto_undesirable_weight, 1.0);
  RLHF_DEFAULT(preference, orpo_lambda, 0.1);
  RLHF_DEFAULT(preference, simpo_gamma, 0.5);

  v1::RewardSpec* reward = spec->mutable_reward();
  if (reward->kind().empty())
    reward->set_kind(facts.id == JobAlgorithm::kDistill ? "none" : "model");
  RLHF_DEFAULT(reward, target_length, 64);
  RLHF_DEFAULT(reward, match_reward, 1.0);
  RLHF_DEFAULT(reward, mismatch_reward, 0.0);
  RLHF_DEFAULT(reward, overlong_buffer_tokens, 0);
  RLHF_DEFAULT(reward, overlong_penalty, 1.0);

  RLHF_DEFAULT(spec->mutable_checkpoint(), interval, 50);
  RLHF_DEFAULT(spec->mutable_checkpoint(), keep_last, 0);
  RLHF_DEFAULT(spec->mutable_runtime(), seed, 42);
  RLHF_DEFAULT(spec->mutable_runtime(), num_actor_ranks, 1);
  RLHF_DEFAULT(spec->mutable_runtime(), max_policy_lag, 0);
  if (spec->runtime().precision().empty()) spec->mutable_runtime()->set_precision("fp32");
}

#undef RLHF_DEFAULT

absl::Status ValidateJobSpec(const v1::JobSpec& spec_in, const ValidateOptions& options) {
  v1::JobSpec spec = spec_in;
  ApplyJobSpecDefaults(&spec);
  SpecErrors errors;
  CheckAlgorithmAndModels(spec, options, &errors);
  CheckHyperparameters(spec, &errors);
  CheckDistill(spec, options, &errors);
  CheckRewardAndEndpoints(spec, &errors);
  CheckData(spec, options, &errors);
  CheckLimits(spec, &errors);
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("invalid job spec (", errors.size(),
                                                 errors.size() == 1 ? " error" : " errors", "):\n",
                                                 absl::StrJoin(errors.lines(), "\n")));
}

absl::StatusOr<v1::JobSpec> LoadJobSpecFile(const std::string& path,
                                            const ValidateOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open job spec ", path));
  std::ostringstream text;
  text << in.rdbuf();
  absl::StatusOr<v1::JobSpec> spec = ParseJobSpecJson(text.str(), path);
  if (!spec.ok()) return spec.status();
  ApplyJobSpecDefaults(&*spec);
  absl::Status status = ValidateJobSpec(*spec, options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", status.message()));
  }
  return spec;
}

}  // namespace rlhf::jobs
