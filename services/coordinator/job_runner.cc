#include "services/coordinator/job_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/algo/grpo.h"
#include "common/algo/kl.h"
#include "common/algo/kto.h"
#include "common/algo/ppo.h"
#include "common/io/atomic_file.h"
#include "common/jobs/dataset.h"
#include "common/model/torch_status.h"
#include "common/rpc/tensor_codec.h"
#include "common/tokenizer/tokenizer.h"
#include "services/coordinator/tokenized_data.h"

namespace rlhf::coordinator {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;
using Rows = std::vector<std::vector<int64_t>>;
constexpr char kStateFile[] = "coordinator_state.json";

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

absl::Status Annotate(const absl::Status& status, absl::string_view stage) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(stage, ": ", status.message()));
}

#define RLHF_RETURN_IF_ERROR(expr)            \
  do {                                        \
    if (absl::Status _s = (expr); !_s.ok()) { \
      return _s;                              \
    }                                         \
  } while (0)

// The dataset tokenized once, read in a seeded order, epoch after epoch. The cursor (how
// many examples were handed out) is all a checkpoint needs to continue the sequence.
class DataStream {
 public:
  DataStream(std::vector<TokenizedExample> examples, uint64_t seed)
      : examples_(std::move(examples)), seed_(seed) {}

  std::vector<const TokenizedExample*> Next(int64_t count) {
    std::vector<const TokenizedExample*> out;
    for (int64_t i = 0; i < count; ++i, ++cursor_) {
      const int64_t n = static_cast<int64_t>(examples_.size());
      const int64_t epoch = cursor_ / n;
      if (epoch != order_epoch_) Shuffle(epoch);
      out.push_back(&examples_[order_[cursor_ % n]]);
    }
    return out;
  }
  int64_t cursor() const { return cursor_; }
  void set_cursor(int64_t cursor) { cursor_ = cursor; }
  int64_t size() const { return static_cast<int64_t>(examples_.size()); }

 private:
  void Shuffle(int64_t epoch) {
    order_.resize(examples_.size());
    std::iota(order_.begin(), order_.end(), 0);
    std::mt19937_64 rng(seed_ + static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ULL);
    std::shuffle(order_.begin(), order_.end(), rng);
    order_epoch_ = epoch;
  }

  std::vector<TokenizedExample> examples_;
  uint64_t seed_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
  int64_t cursor_ = 0;
};

class JobLoop {
 public:
  JobLoop(const v1::Job& job, ServiceClients& clients, const RunHooks& hooks,
          const RunOptions& options)
      : job_(job), spec_(job.spec()), clients_(clients), hooks_(hooks), options_(options) {}

  absl::Status Run();

 private:
  absl::Status Prepare();
  absl::Status LoadData();
  absl::Status Restore();
  absl::Status OnlineIteration(int64_t iteration, std::map<std::string, double>* metrics);
  absl::Status OfflineStep(int64_t iteration, std::map<std::string, double>* metrics);
  // reference.LogProbs of `batch`, summed per row into `out` (F32 [B]).
  absl::Status ReferenceSums(const v1::SequenceBatch& batch, v1::TensorProto* out);
  absl::Status WriteCheckpoint(int64_t iteration, std::string* path);
  absl::Status Sync(std::map<std::string, double>* metrics);
  std::string ConfigJson(int64_t rows) const;
  bool online() const { return online_; }

  const v1::Job& job_;
  const v1::JobSpec& spec_;
  ServiceClients& clients_;
  const RunHooks& hooks_;
  RunOptions options_;

  bool online_ = false;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<DataStream> data_;
  std::unique_ptr<algo::KlController> kl_;
  fs::path checkpoint_dir_;
  int64_t first_iteration_ = 1;
  int64_t total_ = 0;
  int64_t policy_version_ = 0;
  std::vector<int64_t> stop_ids_;
  nlohmann::json history_ = nlohmann::json::array();
};

bool IsOnline(const std::string& algorithm) {
  return algorithm == "ppo" || algorithm == "grpo" || algorithm == "rloo" ||
         algorithm == "reinforce_pp";
}

absl::Status JobLoop::Prepare() {
  online_ = IsOnline(spec_.algorithm());
  auto tokenizer = tokenizer::Tokenizer::FromDirectory(spec_.models().policy_dir());
  if (!tokenizer.ok()) return Annotate(tokenizer.status(), "models.policy_dir");
  tokenizer_ = std::move(*tokenizer);
  stop_ids_ = tokenizer_->eos_ids();
  RLHF_RETURN_IF_ERROR(LoadData());

  const int64_t batch = spec_.training().batch_size();
  total_ = spec_.training().iterations() > 0 ? spec_.training().iterations()
                                             : (data_->size() + batch - 1) / batch;
  const std::string& dir = spec_.checkpoint().dir();
  checkpoint_dir_ = fs::absolute(dir.empty() ? fs::path("checkpoints") / job_.id() : fs::path(dir));

  const v1::KlSpec& kl = spec_.kl();
  if (kl.adaptive()) {
    auto adaptive = algo::AdaptiveKlController::Create(kl.coef(), kl.target(),
                                                       static_cast<double>(kl.horizon()));
    if (!adaptive.ok()) return Annotate(adaptive.status(), "kl");
    kl_ = std::make_unique<algo::AdaptiveKlController>(*adaptive);
  } else {
    kl_ = std::make_unique<algo::FixedKlController>(kl.coef());
  }
  RLHF_RETURN_IF_ERROR(Annotate(clients_.WaitForConnected(), "connecting"));
  return absl::OkStatus();
}

absl::Status JobLoop::LoadData() {
  auto format = jobs::DatasetFormatForAlgorithm(spec_.algorithm());
  if (!format.ok()) return format.status();
  auto examples = jobs::ReadJsonlDataset(spec_.data().train_path(), *format);
  if (!examples.ok()) return Annotate(examples.status(), "data.train_path");
  TokenizeOptions options;
  options.max_prompt_tokens = spec_.generation().max_prompt_tokens();
  options.max_response_tokens = spec_.generation().max_response_tokens();
  options.path = spec_.data().train_path();
  auto tokenized = TokenizeExamples(*tokenizer_, *examples, *format, options);
  if (!tokenized.ok()) return tokenized.status();
  data_ = std::make_unique<DataStream>(std::move(*tokenized),
                                       static_cast<uint64_t>(spec_.runtime().seed()));
  return absl::OkStatus();
}

absl::Status JobLoop::Restore() {
  if (job_.checkpoint_path().empty()) {
    if (options_.reset_actor) {
      RLHF_RETURN_IF_ERROR(
          Annotate(clients_.LoadCheckpoint(fs::absolute(spec_.models().policy_dir()).string(),
                                           &policy_version_),
                   "resetting the actor to models.policy_dir"));
    }
  } else {
    const fs::path dir = job_.checkpoint_path();
    std::ifstream in(dir / kStateFile);
    nlohmann::json state = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!in || !state.is_object() || !state.contains("iteration") || !state.contains("cursor")) {
      return absl::DataLossError(
          absl::StrCat("checkpoint ", dir.string(), ": ", kStateFile, " is missing or malformed"));
    }
    RLHF_RETURN_IF_ERROR(
        Annotate(clients_.LoadCheckpoint((dir / "policy").string(), &policy_version_),
                 "restoring the actor"));
    first_iteration_ = state["iteration"].get<int64_t>() + 1;
    data_->set_cursor(state["cursor"].get<int64_t>());
    if (state.contains("kl_coef") && spec_.kl().adaptive()) {
      auto adaptive =
          algo::AdaptiveKlController::Create(state["kl_coef"].get<double>(), spec_.kl().target(),
                                             static_cast<double>(spec_.kl().horizon()));
      if (adaptive.ok()) kl_ = std::make_unique<algo::AdaptiveKlController>(*adaptive);
    }
    if (state.contains("metrics")) history_ = state["metrics"];
    hooks_.log(
        absl::StrCat("resuming after iteration ", first_iteration_ - 1, " from ", dir.string()));
  }
  if (online() && (options_.reset_actor || !job_.checkpoint_path().empty())) {
    std::map<std::string, double> ignored;
    RLHF_RETURN_IF_ERROR(Sync(&ignored));
  }
  return absl::OkStatus();
}

absl::Status JobLoop::Sync(std::map<std::string, double>* metrics) {
  const auto start = Clock::now();
  auto stats = clients_.SyncWeights();
  if (!stats.ok()) return Annotate(stats.status(), "weight sync");
  (*metrics)["time_sync_seconds"] = Seconds(start);
  (*metrics)["sync_bytes"] = static_cast<double>(stats->bytes);
  (*metrics)["weights_version"] = static_cast<double>(stats->version);
  return absl::OkStatus();
}

double LearningRate(const v1::JobSpec& spec, int64_t version) {
  const double lr = spec.optimizer().learning_rate();
  const int64_t warmup = spec.optimizer().warmup_steps();
  if (warmup <= 0) return lr;
  return lr * std::min(1.0, static_cast<double>(version + 1) / static_cast<double>(warmup));
}

std::string JobLoop::ConfigJson(int64_t rows) const {
  const std::string& algorithm = spec_.algorithm();
  const int64_t minibatches = std::max<int64_t>(
      1, spec_.training().batch_size() / std::max<int64_t>(1, spec_.training().minibatch_size()));
  nlohmann::json config = {
      {"num_minibatches", std::min(minibatches, std::max<int64_t>(rows, 1))},
      {"learning_rate", LearningRate(spec_, policy_version_)},
      {"max_grad_norm", spec_.optimizer().grad_clip()},
      {"temperature", spec_.generation().temperature()},
  };
  if (online()) {
    const v1::PpoSpec& ppo = spec_.ppo();
    config["algorithm"] = algorithm;
    config["ppo_epochs"] = spec_.training().ppo_epochs();
    config["clip_eps"] = ppo.clip_range();
    config["vf_coef"] = ppo.vf_coef();
    config["value_clip"] = ppo.clip_range_value();
    config["entropy_coef"] = ppo.entropy_coef();
    config["kl_coef"] = algorithm == "grpo" ? spec_.kl().coef() : 0.0;
  } else if (algorithm == "sft") {
    config["algorithm"] = "sft";
    config["temperature"] = 1.0;
  } else {
    const v1::PreferenceSpec& p = spec_.preference();
    config["algorithm"] = algorithm == "ipo" ? "dpo" : algorithm;
    config["loss_type"] = p.loss_type();
    config["beta"] = algorithm == "orpo" ? p.orpo_lambda() : p.beta();
    config["label_smoothing"] = p.label_smoothing();
    config["simpo_gamma"] = p.simpo_gamma();
    config["desirable_weight"] = p.kto_desirable_weight();
    config["undesirable_weight"] = p.kto_undesirable_weight();
    config["temperature"] = 1.0;
  }
  return config.dump();
}

// Flat per-token values (the wire layout) -> [B, T] right-padded grid.
torch::Tensor ToGrid(const torch::Tensor& flat, const std::vector<int64_t>& lengths,
                     int64_t width) {
  torch::Tensor grid = torch::zeros({static_cast<int64_t>(lengths.size()), width}, torch::kFloat32);
  int64_t offset = 0;
  for (size_t row = 0; row < lengths.size(); ++row) {
    if (lengths[row] > 0) {
      grid[static_cast<int64_t>(row)]
          .narrow(0, 0, lengths[row])
          .copy_(flat.narrow(0, offset, lengths[row]));
    }
    offset += lengths[row];
  }
  return grid;
}

torch::Tensor ToFlat(const torch::Tensor& grid, const std::vector<int64_t>& lengths) {
  std::vector<torch::Tensor> parts;
  for (size_t row = 0; row < lengths.size(); ++row) {
    parts.push_back(grid[static_cast<int64_t>(row)].narrow(0, 0, lengths[row]));
  }
  return torch::cat(parts).contiguous().to(torch::kFloat32);
}

absl::StatusOr<torch::Tensor> FlatTensor(const v1::TensorProto& proto, int64_t expected,
                                         const char* what) {
  auto tensor = rpc::TensorFromProto(proto);
  if (!tensor.ok()) return Annotate(tensor.status(), what);
  if (tensor->numel() != expected) {
    return absl::InternalError(
        absl::StrCat(what, ": ", tensor->numel(), " values for ", expected, " response tokens"));
  }
  return tensor->reshape({expected}).to(torch::kFloat32);
}

void SetTensor(const torch::Tensor& tensor, v1::TensorProto* proto) {
  (void)rpc::TensorToProto(tensor.contiguous(), proto);  // F32 always encodes
}

absl::StatusOr<algo::KlEstimator> Estimator(const std::string& name) {
  if (name == "k1") return algo::KlEstimator::kK1;
  if (name == "k2") return algo::KlEstimator::kK2;
  if (name == "k3") return algo::KlEstimator::kK3;
  return absl::InvalidArgumentError(absl::StrCat("kl.estimator: unknown '", name, "'"));
}

absl::Status JobLoop::OnlineIteration(int64_t iteration, std::map<std::string, double>* metrics) {
  const auto iteration_start = Clock::now();
  const v1::GenerationSpec& gen = spec_.generation();
  const int64_t n = gen.samples_per_prompt();
  const std::vector<const TokenizedExample*> batch = data_->Next(spec_.training().batch_size());

  // 1-2. prompts -> rollout.Generate.
  Rows prompt_rows;
  for (const TokenizedExample* e : batch) prompt_rows.push_back(e->prompt);
  v1::GenerateRequest generate;
  rpc::TokensToProto(prompt_rows, generate.mutable_prompts());
  generate.set_samples_per_prompt(static_cast<int32_t>(n));
  v1::SamplingParams* sampling = generate.mutable_sampling();
  sampling->set_max_new_tokens(gen.max_response_tokens());
  sampling->set_temperature(static_cast<float>(gen.temperature()));
  sampling->set_top_k(gen.top_k());
  sampling->set_top_p(static_cast<float>(gen.top_p()));
  for (int64_t id : stop_ids_) sampling->add_stop_ids(id);
  generate.set_seed(static_cast<uint64_t>(spec_.runtime().seed()) * 1000000007ULL +
                    static_cast<uint64_t>(iteration) * 1000003ULL);
  v1::GenerateResponse generated;
  auto stage = Clock::now();
  RLHF_RETURN_IF_ERROR(Annotate(clients_.Generate(generate, &generated), "generate"));
  (*metrics)["time_generate_seconds"] = Seconds(stage);
  if (hooks_.cancelled()) return absl::CancelledError("cancelled");

  auto responses = rpc::TokensFromProto(generated.completions());
  if (!responses.ok()) return Annotate(responses.status(), "generate: completions");
  const int64_t rows = static_cast<int64_t>(responses->size());
  if (rows != static_cast<int64_t>(batch.size()) * n) {
    return absl::InternalError(
        absl::StrCat("generate: ", rows, " completions for ", batch.size(), " prompts x ", n));
  }
  std::vector<int64_t> lengths;
  int64_t width = 1, tokens = 0;
  for (const auto& r : *responses) {
    lengths.push_back(static_cast<int64_t>(r.size()));
    width = std::max<int64_t>(width, static_cast<int64_t>(r.size()));
    tokens += static_cast<int64_t>(r.size());
  }
  v1::SequenceBatch sequences;
  Rows expanded;
  for (const TokenizedExample* e : batch) {
    for (int64_t k = 0; k < n; ++k) expanded.push_back(e->prompt);
  }
  rpc::TokensToProto(expanded, sequences.mutable_prompts());
  *sequences.mutable_responses() = generated.completions();

  // 3. reference, reward and actor in parallel.
  v1::ScoreRequest score_request;
  *score_request.mutable_batch() = sequences;
  for (int64_t row = 0; row < rows; ++row) {
    const TokenizedExample* e = batch[row / n];
    // Models often have more embedding rows than the tokenizer has tokens (padded
    // vocabularies, e.g. Qwen2); such ids have no text.
    std::vector<int64_t> ids;
    for (int64_t id : (*responses)[row]) {
      if (id >= 0 && id < tokenizer_->vocab_size()) ids.push_back(id);
    }
    auto text = tokenizer_->Decode(ids, /*skip_special_tokens=*/true);
    if (!text.ok()) return Annotate(text.status(), "decoding a completion");
    score_request.add_prompt_texts(e->prompt_text);
    score_request.add_response_texts(*text);
    score_request.add_references(e->reference);
  }
  v1::LogProbsRequest ref_request;
  *ref_request.mutable_batch() = sequences;
  ref_request.set_temperature(static_cast<float>(gen.temperature()));
  v1::EvaluateRequest eval_request;
  *eval_request.mutable_batch() = sequences;
  eval_request.set_temperature(static_cast<float>(gen.temperature()));
  eval_request.set_values(spec_.algorithm() == "ppo");

  v1::LogProbsResponse ref_response;
  v1::ScoreResponse score_response;
  v1::EvaluateResponse eval_response;
  auto timed = [](std::function<absl::Status()> call, double* seconds) {
    const auto start = Clock::now();
    absl::Status status = call();
    *seconds = Seconds(start);
    return status;
  };
  double ref_s = 0, score_s = 0, eval_s = 0;
  auto ref_call = std::async(
      std::launch::async, timed, [&] { return clients_.LogProbs(ref_request, &ref_response); },
      &ref_s);
  auto score_call = std::async(
      std::launch::async, timed, [&] { return clients_.Score(score_request, &score_response); },
      &score_s);
  absl::Status eval_status =
      timed([&] { return clients_.Evaluate(eval_request, &eval_response); }, &eval_s);
  absl::Status ref_status = ref_call.get(), score_status = score_call.get();
  RLHF_RETURN_IF_ERROR(Annotate(ref_status, "reference"));
  RLHF_RETURN_IF_ERROR(Annotate(score_status, "score"));
  RLHF_RETURN_IF_ERROR(Annotate(eval_status, "evaluate"));
  (*metrics)["time_reference_seconds"] = ref_s;
  (*metrics)["time_score_seconds"] = score_s;
  (*metrics)["time_evaluate_seconds"] = eval_s;
  if (score_response.scores_size() != rows) {
    return absl::InternalError(absl::StrCat("score: ", score_response.scores_size(), " scores for ",
                                            rows, " completions"));
  }
  if (hooks_.cancelled()) return absl::CancelledError("cancelled");

  // 4. rewards, advantages, returns (common/algo).
  auto old_flat = FlatTensor(eval_response.logprobs(), tokens, "evaluate: logprobs");
  if (!old_flat.ok()) return old_flat.status();
  auto ref_flat = FlatTensor(ref_response.logprobs(), tokens, "reference: logprobs");
  if (!ref_flat.ok()) return ref_flat.status();
  const torch::Tensor old_lp = ToGrid(*old_flat, lengths, width);
  const torch::Tensor ref_lp = ToGrid(*ref_flat, lengths, width);
  torch::Tensor mask = torch::zeros({rows, width}, torch::kFloat32);
  torch::Tensor has_eos = torch::zeros({rows}, torch::kBool);
  for (int64_t row = 0; row < rows; ++row) {
    mask[row].narrow(0, 0, lengths[row]).fill_(1.0);
    const int reason = row < generated.finish_reasons_size() ? generated.finish_reasons(row) : 0;
    has_eos[row] = reason == v1::FINISH_REASON_EOS || reason == v1::FINISH_REASON_STOP;
  }
  std::vector<float> score_values(score_response.scores().begin(), score_response.scores().end());
  const torch::Tensor scores = torch::tensor(score_values, torch::kFloat32);
  auto estimator = Estimator(spec_.kl().estimator());
  if (!estimator.ok()) return estimator.status();

  const std::string& algorithm = spec_.algorithm();
  const double kl_coef = kl_->value();
  algo::PpoRewardOptions reward_options;
  reward_options.kl_coef = (algorithm == "ppo" || algorithm == "reinforce_pp") ? kl_coef : 0.0;
  reward_options.kl_estimator = *estimator;
  auto shaped = algo::ComputePpoRewards(old_lp, ref_lp, scores, mask, has_eos, reward_options);
  if (!shaped.ok()) return Annotate(shaped.status(), "rewards");
  const torch::Tensor sequence_kl = shaped->kl.sum(1);

  v1::TrainRequest train;
  v1::PolicyGradientBatch* pg = train.mutable_policy_gradient();
  *pg->mutable_batch() = sequences;
  SetTensor(*old_flat, pg->mutable_old_logprobs());
  torch::Tensor advantages;
  if (algorithm == "ppo") {
    auto values_flat = FlatTensor(eval_response.values(), tokens, "evaluate: values");
    if (!values_flat.ok()) return values_flat.status();
    const torch::Tensor values = ToGrid(*values_flat, lengths, width);
    auto gae = algo::ComputeGae(shaped->rewards, values, mask, spec_.ppo().gamma(),
                                spec_.ppo().gae_lambda());
    if (!gae.ok()) return Annotate(gae.status(), "gae");
    advantages = gae->advantages;
    if (spec_.ppo().whiten_advantages()) {
      auto whitened = algo::WhitenAdvantages(advantages, mask);
      if (!whitened.ok()) return Annotate(whitened.status(), "whitening");
      advantages = *whitened;
    }
    SetTensor(ToFlat(gae->returns, lengths), pg->mutable_returns());
    SetTensor(*values_flat, pg->mutable_old_values());
    (*metrics)["value_mean"] = values_flat->mean().item<double>();
  } else if (algorithm == "grpo") {
    auto group = algo::GrpoAdvantages(scores, n);
    if (!group.ok()) return Annotate(group.status(), "group advantages");
    advantages = group->advantages.unsqueeze(1) * mask;
    SetTensor(*ref_flat, pg->mutable_ref_logprobs());
  } else if (algorithm == "rloo") {
    algo::RlooAdvantageOptions rloo;
    rloo.beta = kl_coef;
    auto loo = algo::RlooAdvantages(scores, n, sequence_kl, rloo);
    if (!loo.ok()) return Annotate(loo.status(), "leave-one-out advantages");
    advantages = loo->unsqueeze(1) * mask;
  } else {  // reinforce_pp
    auto rpp = algo::ReinforcePlusPlusAdvantages(shaped->rewards, mask, spec_.ppo().gamma());
    if (!rpp.ok()) return Annotate(rpp.status(), "reinforce++ advantages");
    advantages = rpp->advantages;
  }
  SetTensor(ToFlat(advantages, lengths), pg->mutable_advantages());
  train.set_algorithm_config_json(ConfigJson(rows));

  // 5. actor.Train.
  v1::TrainResponse trained;
  stage = Clock::now();
  RLHF_RETURN_IF_ERROR(Annotate(clients_.Train(train, &trained), "train"));
  (*metrics)["time_train_seconds"] = Seconds(stage);
  policy_version_ = trained.policy_version();
  for (const auto& [name, value] : trained.stats()) (*metrics)[name] = value;

  // 6. actor -> rollout weights.
  RLHF_RETURN_IF_ERROR(Sync(metrics));

  // 7. metrics, KL controller.
  const double mean_kl = sequence_kl.mean().item<double>();
  kl_->Update(mean_kl, rows);
  (*metrics)["reward_mean"] = scores.mean().item<double>();
  (*metrics)["reward_std"] = rows > 1 ? scores.std().item<double>() : 0.0;
  (*metrics)["kl"] = mean_kl;
  (*metrics)["kl_coef"] = kl_coef;
  (*metrics)["non_score_reward"] = shaped->non_score_rewards.sum(1).mean().item<double>();
  (*metrics)["response_length"] = static_cast<double>(tokens) / static_cast<double>(rows);
  (*metrics)["tokens_generated"] = static_cast<double>(tokens);
  (*metrics)["rollout_policy_version"] = static_cast<double>(generated.policy_version());
  (*metrics)["policy_version"] = static_cast<double>(policy_version_);
  const double seconds = Seconds(iteration_start);
  (*metrics)["time_iteration_seconds"] = seconds;
  (*metrics)["tokens_per_second"] = static_cast<double>(tokens) / std::max(seconds, 1e-9);
  return absl::OkStatus();
}

absl::Status JobLoop::OfflineStep(int64_t /*iteration*/, std::map<std::string, double>* metrics) {
  const auto start = Clock::now();
  const std::vector<const TokenizedExample*> batch = data_->Next(spec_.training().batch_size());
  const int64_t rows = static_cast<int64_t>(batch.size());
  Rows prompts;
  for (const TokenizedExample* e : batch) prompts.push_back(e->prompt);
  v1::TrainRequest train;
  train.set_algorithm_config_json(ConfigJson(rows));
  if (spec_.algorithm() == "sft") {
    Rows completions;
    for (const TokenizedExample* e : batch) completions.push_back(e->completion);
    rpc::TokensToProto(prompts, train.mutable_sft()->mutable_prompts());
    rpc::TokensToProto(completions, train.mutable_sft()->mutable_responses());
  } else if (spec_.algorithm() != "kto") {
    Rows chosen, rejected;
    for (const TokenizedExample* e : batch) {
      chosen.push_back(e->chosen);
      rejected.push_back(e->rejected);
    }
    v1::PreferenceBatch* pref = train.mutable_preference();
    rpc::TokensToProto(prompts, pref->mutable_chosen()->mutable_prompts());
    rpc::TokensToProto(chosen, pref->mutable_chosen()->mutable_responses());
    rpc::TokensToProto(prompts, pref->mutable_rejected()->mutable_prompts());
    rpc::TokensToProto(rejected, pref->mutable_rejected()->mutable_responses());
    if (spec_.algorithm() == "dpo" || spec_.algorithm() == "ipo") {
      const auto stage = Clock::now();
      RLHF_RETURN_IF_ERROR(ReferenceSums(pref->chosen(), pref->mutable_ref_chosen_logprobs()));
      RLHF_RETURN_IF_ERROR(ReferenceSums(pref->rejected(), pref->mutable_ref_rejected_logprobs()));
      (*metrics)["time_reference_seconds"] = Seconds(stage);
    }
  } else if (spec_.algorithm() == "kto") {
    // KL rows pair completion index[i] with prompt i (TRL _get_kl_dataset's rotation).
    Rows completions, kl_completions;
    v1::UnpairedBatch* unpaired = train.mutable_unpaired();
    for (const TokenizedExample* e : batch) {
      completions.push_back(e->completion);
      unpaired->add_desirable(e->desirable);
    }
    const torch::Tensor index = algo::KtoKlCompletionIndex(rows);
    for (int64_t i = 0; i < rows; ++i)
      kl_completions.push_back(completions[index[i].item<int64_t>()]);
    rpc::TokensToProto(prompts, unpaired->mutable_batch()->mutable_prompts());
    rpc::TokensToProto(completions, unpaired->mutable_batch()->mutable_responses());
    rpc::TokensToProto(prompts, unpaired->mutable_kl_batch()->mutable_prompts());
    rpc::TokensToProto(kl_completions, unpaired->mutable_kl_batch()->mutable_responses());
    const auto stage = Clock::now();
    RLHF_RETURN_IF_ERROR(ReferenceSums(unpaired->batch(), unpaired->mutable_ref_logprobs()));
    RLHF_RETURN_IF_ERROR(ReferenceSums(unpaired->kl_batch(), unpaired->mutable_ref_kl_logprobs()));
    (*metrics)["time_reference_seconds"] = Seconds(stage);
  }
  v1::TrainResponse trained;
  const auto stage = Clock::now();
  RLHF_RETURN_IF_ERROR(Annotate(clients_.Train(train, &trained), "train"));
  (*metrics)["time_train_seconds"] = Seconds(stage);
  policy_version_ = trained.policy_version();
  for (const auto& [name, value] : trained.stats()) (*metrics)[name] = value;
  (*metrics)["policy_version"] = static_cast<double>(policy_version_);
  (*metrics)["epoch"] = static_cast<double>(data_->cursor()) / static_cast<double>(data_->size());
  (*metrics)["time_iteration_seconds"] = Seconds(start);
  return absl::OkStatus();
}

absl::Status JobLoop::ReferenceSums(const v1::SequenceBatch& batch, v1::TensorProto* out) {
  v1::LogProbsRequest request;
  *request.mutable_batch() = batch;
  v1::LogProbsResponse response;
  RLHF_RETURN_IF_ERROR(Annotate(clients_.LogProbs(request, &response), "reference"));
  auto responses = rpc::TokensFromProto(batch.responses());
  if (!responses.ok()) return responses.status();
  int64_t tokens = 0, width = 1;
  std::vector<int64_t> lengths;
  for (const auto& r : *responses) {
    lengths.push_back(static_cast<int64_t>(r.size()));
    tokens += lengths.back();
    width = std::max(width, lengths.back());
  }
  auto flat = FlatTensor(response.logprobs(), tokens, "reference: logprobs");
  if (!flat.ok()) return flat.status();
  SetTensor(ToGrid(*flat, lengths, width).sum(1), out);
  return absl::OkStatus();
}

absl::Status JobLoop::WriteCheckpoint(int64_t iteration, std::string* path) {
  const fs::path final_dir = checkpoint_dir_ / absl::StrFormat("iter-%06d", iteration);
  const fs::path staging = checkpoint_dir_ / absl::StrFormat(".iter-%06d.tmp", iteration);
  std::error_code error;
  fs::remove_all(staging, error);
  fs::create_directories(staging, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot create checkpoint directory ", staging.string(),
                                            ": ", error.message()));
  }
  RLHF_RETURN_IF_ERROR(
      Annotate(clients_.SaveCheckpoint((staging / "policy").string(), nullptr), "checkpoint"));
  nlohmann::json state = {
      {"format", "rlhf.coordinator.v1"},   {"job_id", job_.id()},
      {"algorithm", spec_.algorithm()},    {"iteration", iteration},
      {"total_iterations", total_},        {"cursor", data_->cursor()},
      {"kl_coef", kl_->value()},           {"seed", spec_.runtime().seed()},
      {"policy_version", policy_version_}, {"metrics", history_},
  };
  RLHF_RETURN_IF_ERROR(io::WriteFileAtomically(staging / kStateFile, state.dump(1) + "\n"));
  fs::remove_all(final_dir, error);  // a stale one from a run that died after its rename
  fs::rename(staging, final_dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot rename ", staging.string(), " to ",
                                            final_dir.string(), ": ", error.message()));
  }
  *path = final_dir.string();
  return absl::OkStatus();
}

absl::Status JobLoop::Run() {
  RLHF_RETURN_IF_ERROR(Prepare());
  RLHF_RETURN_IF_ERROR(Restore());
  const int64_t interval = spec_.checkpoint().interval();
  for (int64_t iteration = first_iteration_; iteration <= total_; ++iteration) {
    if (hooks_.cancelled()) return absl::CancelledError("cancelled");
    IterationReport report;
    report.iteration = iteration;
    report.total_iterations = total_;
    absl::Status status = online() ? OnlineIteration(iteration, &report.metrics)
                                   : OfflineStep(iteration, &report.metrics);
    RLHF_RETURN_IF_ERROR(Annotate(status, absl::StrCat("iteration ", iteration)));
    nlohmann::json point(report.metrics);
    point["iteration"] = iteration;
    history_.push_back(point);
    if ((interval > 0 && iteration % interval == 0) || iteration == total_) {
      RLHF_RETURN_IF_ERROR(WriteCheckpoint(iteration, &report.checkpoint_path));
    }
    RLHF_RETURN_IF_ERROR(hooks_.on_iteration(report));
  }
  const fs::path final_dir = checkpoint_dir_ / "final";
  RLHF_RETURN_IF_ERROR(
      Annotate(clients_.SaveCheckpoint(final_dir.string(), nullptr, /*weights_only=*/true),
               "exporting the final policy"));
  hooks_.log(absl::StrCat("final policy: ", final_dir.string()));
  return absl::OkStatus();
}

}  // namespace

bool IsRunnableAlgorithm(const std::string& algorithm) {
  return IsOnline(algorithm) || algorithm == "sft" || algorithm == "dpo" || algorithm == "ipo" ||
         algorithm == "simpo" || algorithm == "orpo" || algorithm == "reward_model" ||
         algorithm == "kto";
}

absl::Status RunJob(const v1::Job& job, ServiceClients& clients, const RunHooks& hooks,
                    const RunOptions& options) {
  if (!IsRunnableAlgorithm(job.spec().algorithm())) {
    return absl::UnimplementedError(absl::StrCat("algorithm '", job.spec().algorithm(),
                                                 "' is not yet supported by the coordinator"));
  }
  JobLoop loop(job, clients, hooks, options);
  return model::CatchTorchErrors("job", [&] { return loop.Run(); });
}

}  // namespace rlhf::coordinator
