#include "common/jobs/spec_checks.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/chat/chat_template.h"
#include "common/jobs/algorithms.h"
#include "common/jobs/dataset.h"

namespace rlhf::jobs {
namespace {

namespace fs = std::filesystem;

absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

// Checks a Hugging Face model directory; returns its context length (n_positions or
// max_position_embeddings in config.json), or 0 if unknown or the directory is bad.
int64_t CheckModelDir(const std::string& dir, std::string_view path, SpecErrors* errors) {
  std::error_code ec;
  const fs::path config_path = fs::path(dir) / "config.json";
  if (!fs::is_directory(dir, ec)) {
    errors->Add(path, absl::StrCat("model directory ", dir, " does not exist"));
    return 0;
  }
  if (!fs::is_regular_file(config_path, ec)) {
    errors->Add(path, absl::StrCat("model directory ", dir,
                                   " has no config.json (expected Hugging Face layout)"));
    return 0;
  }
  std::ifstream in(config_path, std::ios::binary);
  nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) {
    errors->Add(path, absl::StrCat(config_path.string(), " is not a JSON object"));
    return 0;
  }
  for (const char* key : {"n_positions", "max_position_embeddings"}) {
    auto it = config.find(key);
    if (it != config.end() && it->is_number_integer()) return it->get<int64_t>();
  }
  return 0;
}

// "host:port" with a port in 1..65535, or "unix:/path".
bool IsHostPort(absl::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos || colon == 0) return false;
  int port = 0;
  if (!absl::SimpleAtoi(address.substr(colon + 1), &port)) return false;
  return port >= 1 && port <= 65535;
}

// gRPC target names: host:port, unix:/path, dns:///host:port (every address the name
// resolves to: replicas behind a headless Service), ipv4:/ipv6: lists of host:port.
bool IsEndpoint(const std::string& endpoint) {
  const absl::string_view e(endpoint);
  if (absl::StartsWith(e, "unix:")) return e.size() > 5;
  if (absl::StartsWith(e, "dns:///")) return IsHostPort(e.substr(7));
  for (absl::string_view scheme : {"ipv4:", "ipv6:"}) {
    if (!absl::StartsWith(e, scheme)) continue;
    for (absl::string_view address : absl::StrSplit(e.substr(scheme.size()), ',')) {
      if (!IsHostPort(address)) return false;
    }
    return true;
  }
  return IsHostPort(e);
}

void CheckEndpoint(const std::string& endpoint, std::string_view path, SpecErrors* errors) {
  if (!endpoint.empty() && !IsEndpoint(endpoint)) {
    errors->Add(path, absl::StrCat("\"", endpoint,
                                   "\" is not host:port, dns:///host:port, "
                                   "ipv4:host:port[,host:port...] or unix:/path"));
  }
}

void CheckRegex(const std::string& pattern, SpecErrors* errors) {
  int error_code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF, &error_code, &offset, nullptr);
  if (code != nullptr) {
    pcre2_code_free(code);
    return;
  }
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(error_code, buffer, sizeof(buffer));
  errors->Add("reward.pattern", absl::StrCat("invalid regex at offset ", offset, ": ",
                                             reinterpret_cast<const char*>(buffer)));
}

void CheckDatasetFile(const v1::JobSpec& spec, const std::string& file, std::string_view path,
                      const ValidateOptions& options, SpecErrors* errors) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    errors->Add(path, absl::StrCat("dataset file ", file, " does not exist"));
    return;
  }
  absl::StatusOr<DatasetFormat> format = DatasetFormatForAlgorithm(spec.algorithm());
  if (!options.check_dataset_contents || !format.ok()) return;
  absl::StatusOr<std::vector<Example>> examples = ReadJsonlDataset(file, *format);
  if (!examples.ok()) {
    errors->Add(path, absl::StrCat("not a ", Absl(DatasetFormatName(*format)), " dataset for ",
                                   spec.algorithm(), ":\n", examples.status().message()));
    return;
  }
  // Conversational lines need the policy's chat template (the tokenizer loads it at run
  // time); a job with none is refused before it starts.
  const bool conversational = std::any_of(examples->begin(), examples->end(), [](const Example& e) {
    return e.conversation != nullptr;
  });
  if (conversational && !spec.models().policy_dir().empty()) {
    absl::StatusOr<chat::ChatTemplate> chat_template =
        chat::ChatTemplate::Load(spec.models().policy_dir());
    if (!chat_template.ok()) {
      errors->Add(path, absl::StrCat("conversational examples need the policy's chat template: ",
                                     chat_template.status().message()));
      return;
    }
  }
  if (IsOnlineRlAlgorithm(spec.algorithm()) && spec.reward().kind() == "exact_match") {
    for (const Example& example : *examples) {
      if (example.reference.empty()) {
        errors->Add(path, absl::StrCat(file, ":", example.line,
                                       ": reward.kind exact_match needs a \"reference\" string "
                                       "on every line"));
        return;
      }
    }
  }
}

}  // namespace

// Range checks on one number; `what` is e.g. "> 0" or "in [0, 1]".
void CheckNumber(double value, bool ok, std::string_view path, std::string_view what,
                 SpecErrors* errors) {
  if (!std::isfinite(value) || !ok) {
    errors->Add(path, absl::StrCat("must be ", Absl(what), ", got ", value));
  }
}
void Positive(double v, std::string_view path, SpecErrors* e) {
  CheckNumber(v, v > 0, path, "> 0", e);
}
void NonNegative(double v, std::string_view path, SpecErrors* e) {
  CheckNumber(v, v >= 0, path, ">= 0", e);
}
void UnitClosed(double v, std::string_view path, SpecErrors* e) {
  CheckNumber(v, v >= 0 && v <= 1, path, "in [0, 1]", e);
}
void UnitHalfOpen(double v, std::string_view path, SpecErrors* e) {
  CheckNumber(v, v >= 0 && v < 1, path, "in [0, 1)", e);
}

void CheckOneOf(const std::string& value, std::initializer_list<const char*> allowed,
                std::string_view path, SpecErrors* errors) {
  for (const char* a : allowed) {
    if (value == a) return;
  }
  errors->Add(path, absl::StrCat("unknown value \"", value,
                                 "\"; expected one of: ", absl::StrJoin(allowed, ", ")));
}

void SpecErrors::Add(std::string_view field_path, std::string_view why) {
  lines_.push_back(absl::StrCat(Absl(field_path), ": ", Absl(why)));
}

void CheckAlgorithmAndModels(const v1::JobSpec& spec, const ValidateOptions& options,
                             SpecErrors* errors) {
  const std::string& algorithm = spec.algorithm();
  if (algorithm.empty()) {
    errors->Add("algorithm", absl::StrCat("required; one of: ", AlgorithmNames()));
  } else if (!IsKnownAlgorithm(algorithm)) {
    errors->Add("algorithm", absl::StrCat("unknown algorithm \"", algorithm,
                                          "\"; expected one of: ", AlgorithmNames()));
  }
  const v1::ModelsSpec& models = spec.models();
  if (models.policy_dir().empty()) {
    errors->Add("models.policy_dir", "required");
  } else if (options.check_files) {
    const int64_t context = CheckModelDir(models.policy_dir(), "models.policy_dir", errors);
    int64_t tokens = 0;  // saturates: CheckLimits reports sizes past their bounds
    if (__builtin_add_overflow(spec.generation().max_prompt_tokens(),
                               spec.generation().max_response_tokens(), &tokens)) {
      tokens = std::numeric_limits<int64_t>::max();
    }
    if (context > 0 && tokens > context) {
      errors->Add("generation.max_response_tokens",
                  absl::StrCat("max_prompt_tokens + max_response_tokens = ", tokens,
                               " exceeds the policy's context length ", context, " (config.json)"));
    }
  }
  if (options.check_files && !models.reference_dir().empty() &&
      models.reference_dir() != models.policy_dir()) {
    CheckModelDir(models.reference_dir(), "models.reference_dir", errors);
  }
  if (options.check_files && !models.reward_dir().empty()) {
    CheckModelDir(models.reward_dir(), "models.reward_dir", errors);
  }
}

void CheckHyperparameters(const v1::JobSpec& spec, SpecErrors* errors) {
  const v1::OptimizerSpec& opt = spec.optimizer();
  Positive(opt.learning_rate(), "optimizer.learning_rate", errors);
  NonNegative(opt.weight_decay(), "optimizer.weight_decay", errors);
  UnitHalfOpen(opt.adam_beta1(), "optimizer.adam_beta1", errors);
  UnitHalfOpen(opt.adam_beta2(), "optimizer.adam_beta2", errors);
  Positive(opt.adam_epsilon(), "optimizer.adam_epsilon", errors);
  NonNegative(opt.grad_clip(), "optimizer.grad_clip", errors);
  NonNegative(opt.warmup_steps(), "optimizer.warmup_steps", errors);

  const v1::TrainingSpec& training = spec.training();
  const int64_t ranks = spec.runtime().num_actor_ranks();
  const int64_t batch = training.batch_size();
  const int64_t minibatch = training.minibatch_size();
  if (ranks < 1) errors->Add("runtime.num_actor_ranks", absl::StrCat("must be >= 1, got ", ranks));
  Positive(batch, "training.batch_size", errors);
  Positive(minibatch, "training.minibatch_size", errors);
  if (batch > 0 && minibatch > 0 && batch % minibatch != 0) {
    errors->Add("training.minibatch_size",
                absl::StrCat("must divide training.batch_size (", batch, "), got ", minibatch));
  }
  if (ranks >= 1 && batch > 0 && batch % ranks != 0) {
    errors->Add(
        "training.batch_size",
        absl::StrCat("must be divisible by runtime.num_actor_ranks (", ranks, "), got ", batch));
  }
  if (ranks >= 1 && minibatch > 0 && minibatch % ranks != 0) {
    errors->Add("training.minibatch_size",
                absl::StrCat("must be divisible by runtime.num_actor_ranks (", ranks,
                             ") so every rank gets a shard, got ", minibatch));
  }
  if (training.ppo_epochs() < 1) {
    errors->Add("training.ppo_epochs", absl::StrCat("must be >= 1, got ", training.ppo_epochs()));
  }
  NonNegative(training.iterations(), "training.iterations", errors);
  NonNegative(training.max_tokens_per_microbatch(), "training.max_tokens_per_microbatch", errors);
  if (const std::string& precision = spec.runtime().precision();
      precision != "fp32" && precision != "bf16-mixed") {
    errors->Add("runtime.precision",
                absl::StrCat("must be \"fp32\" or \"bf16-mixed\", got \"", precision, "\""));
  }

  const v1::PpoSpec& ppo = spec.ppo();
  UnitClosed(ppo.gamma(), "ppo.gamma", errors);
  UnitClosed(ppo.gae_lambda(), "ppo.gae_lambda", errors);
  Positive(ppo.clip_range(), "ppo.clip_range", errors);
  Positive(ppo.clip_range_value(), "ppo.clip_range_value", errors);
  NonNegative(ppo.vf_coef(), "ppo.vf_coef", errors);
  NonNegative(ppo.entropy_coef(), "ppo.entropy_coef", errors);
  CheckOnlineVariants(spec, errors);

  const v1::KlSpec& kl = spec.kl();
  NonNegative(kl.coef(), "kl.coef", errors);
  Positive(kl.target(), "kl.target", errors);
  Positive(kl.horizon(), "kl.horizon", errors);
  CheckOneOf(kl.estimator(), {"k1", "k2", "k3"}, "kl.estimator", errors);

  const v1::GenerationSpec& gen = spec.generation();
  Positive(gen.max_prompt_tokens(), "generation.max_prompt_tokens", errors);
  Positive(gen.max_response_tokens(), "generation.max_response_tokens", errors);
  Positive(gen.temperature(), "generation.temperature", errors);
  CheckNumber(gen.top_p(), gen.top_p() > 0 && gen.top_p() <= 1, "generation.top_p", "in (0, 1]",
              errors);
  NonNegative(gen.top_k(), "generation.top_k", errors);
  const std::string& algorithm = spec.algorithm();
  const AlgorithmFacts* facts = FindAlgorithm(algorithm);
  if (facts != nullptr && gen.samples_per_prompt() < facts->min_samples_per_prompt) {
    errors->Add(
        "generation.samples_per_prompt",
        absl::StrCat(
            algorithm, " needs >= ", facts->min_samples_per_prompt, " samples per prompt (",
            facts->id == JobAlgorithm::kRejectionSampling ? "to choose from" : "the group baseline",
            "), got ", gen.samples_per_prompt()));
  } else if (gen.samples_per_prompt() < 1) {
    errors->Add("generation.samples_per_prompt",
                absl::StrCat("must be >= 1, got ", gen.samples_per_prompt()));
  }

  const v1::PreferenceSpec& pref = spec.preference();
  Positive(pref.beta(), "preference.beta", errors);
  CheckOneOf(pref.loss_type(), {"sigmoid", "robust", "hinge", "ipo"}, "preference.loss_type",
             errors);
  if (algorithm == "ipo" && pref.loss_type() != "ipo") {
    errors->Add("preference.loss_type", absl::StrCat("algorithm ipo uses loss_type \"ipo\", got \"",
                                                     pref.loss_type(), "\""));
  }
  CheckNumber(pref.label_smoothing(), pref.label_smoothing() >= 0 && pref.label_smoothing() < 0.5,
              "preference.label_smoothing", "in [0, 0.5)", errors);
  Positive(pref.kto_desirable_weight(), "preference.kto_desirable_weight", errors);
  Positive(pref.kto_undesirable_weight(), "preference.kto_undesirable_weight", errors);
  Positive(pref.orpo_lambda(), "preference.orpo_lambda", errors);
  NonNegative(pref.simpo_gamma(), "preference.simpo_gamma", errors);

  NonNegative(spec.checkpoint().interval(), "checkpoint.interval", errors);
  NonNegative(spec.checkpoint().keep_last(), "checkpoint.keep_last", errors);
  if (const std::string& dtype = spec.checkpoint().export_dtype();
      !dtype.empty() && dtype != "float32" && dtype != "bfloat16" && dtype != "float16") {
    errors->Add("checkpoint.export_dtype",
                absl::StrCat("must be float32, bfloat16 or float16, got \"", dtype, "\""));
  }
}

void CheckRewardAndEndpoints(const v1::JobSpec& spec, SpecErrors* errors) {
  const v1::RewardSpec& reward = spec.reward();
  CheckOneOf(reward.kind(), {"model", "exact_match", "regex", "length", "none"}, "reward.kind",
             errors);
  if (IsOnlineRlAlgorithm(spec.algorithm()) && reward.kind() == "model" &&
      spec.models().reward_dir().empty() && spec.endpoints().reward().empty()) {
    errors->Add("models.reward_dir",
                absl::StrCat(spec.algorithm(),
                             " needs a reward: set models.reward_dir, endpoints.reward, or a "
                             "rule scorer in reward.kind (exact_match, regex, length)"));
  }
  if (reward.kind() == "regex") {
    if (reward.pattern().empty()) {
      errors->Add("reward.pattern", "required for reward.kind \"regex\"");
    } else {
      CheckRegex(reward.pattern(), errors);
    }
  }
  if (reward.kind() == "length") Positive(reward.target_length(), "reward.target_length", errors);
  CheckNumber(reward.match_reward(), true, "reward.match_reward", "finite", errors);
  CheckNumber(reward.mismatch_reward(), true, "reward.mismatch_reward", "finite", errors);

  const v1::EndpointsSpec& endpoints = spec.endpoints();
  CheckEndpoint(endpoints.actor(), "endpoints.actor", errors);
  for (int i = 0; i < endpoints.rollout_size(); ++i) {
    CheckEndpoint(endpoints.rollout(i), absl::StrCat("endpoints.rollout[", i, "]"), errors);
  }
  CheckEndpoint(endpoints.reference(), "endpoints.reference", errors);
  CheckEndpoint(endpoints.reward(), "endpoints.reward", errors);
}

void CheckData(const v1::JobSpec& spec, const ValidateOptions& options, SpecErrors* errors) {
  const v1::DataSpec& data = spec.data();
  if (data.train_path().empty()) {
    errors->Add("data.train_path", "required");
  } else if (options.check_files) {
    CheckDatasetFile(spec, data.train_path(), "data.train_path", options, errors);
  }
  if (!data.eval_path().empty() && options.check_files) {
    CheckDatasetFile(spec, data.eval_path(), "data.eval_path", options, errors);
  }
  std::error_code ec;
  const std::string& dir = spec.checkpoint().dir();
  if (options.check_files && !dir.empty() && fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    errors->Add("checkpoint.dir", absl::StrCat(dir, " exists and is not a directory"));
  }
}

}  // namespace rlhf::jobs
