#include "services/coordinator/job_runner.h"

#include <filesystem>
#include <fstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/io/atomic_file.h"
#include "common/jobs/algorithms.h"
#include "common/jobs/dataset.h"
#include "common/jobs/metric_names.h"
#include "common/jobs/tokenized_data.h"
#include "common/status/status_macros.h"
#include "common/status/torch_status.h"
#include "services/coordinator/job_loop.h"

namespace rlhf::coordinator {
namespace fs = std::filesystem;
namespace {

constexpr char kStateFile[] = "coordinator_state.json";

}  // namespace

absl::Status JobLoop::Prepare() {
  facts_ = jobs::FindAlgorithm(spec_.algorithm());
  if (facts_ == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown algorithm \"", spec_.algorithm(), "\""));
  }
  online_ = facts_->online;
  auto tokenizer = tokenizer::Tokenizer::FromDirectory(spec_.models().policy_dir());
  if (!tokenizer.ok()) return WithContext(tokenizer.status(), "models.policy_dir");
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
    if (!adaptive.ok()) return WithContext(adaptive.status(), "kl");
    kl_ = std::make_unique<algo::AdaptiveKlController>(*adaptive);
  } else {
    kl_ = std::make_unique<algo::FixedKlController>(kl.coef());
  }
  RLHF_RETURN_IF_ERROR(WithContext(clients_.WaitForConnected(), "connecting"));
  return absl::OkStatus();
}

absl::Status JobLoop::LoadData() {
  auto format = jobs::DatasetFormatForAlgorithm(spec_.algorithm());
  if (!format.ok()) return format.status();
  auto examples = jobs::ReadJsonlDataset(spec_.data().train_path(), *format);
  if (!examples.ok()) return WithContext(examples.status(), "data.train_path");
  jobs::TokenizeOptions options;
  options.max_prompt_tokens = spec_.generation().max_prompt_tokens();
  options.max_response_tokens = spec_.generation().max_response_tokens();
  options.path = spec_.data().train_path();
  auto tokenized = jobs::TokenizeExamples(*tokenizer_, *examples, *format, options);
  if (!tokenized.ok()) return tokenized.status();
  data_ = std::make_unique<DataStream>(std::move(*tokenized),
                                       static_cast<uint64_t>(spec_.runtime().seed()));
  return absl::OkStatus();
}

absl::Status JobLoop::Restore() {
  if (job_.checkpoint_path().empty()) {
    if (options_.reset_actor) {
      RLHF_RETURN_IF_ERROR(
          WithContext(clients_.LoadCheckpoint(fs::absolute(spec_.models().policy_dir()).string(),
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
        WithContext(clients_.LoadCheckpoint((dir / "policy").string(), &policy_version_),
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
  if (!stats.ok()) return WithContext(stats.status(), "weight sync");
  (*metrics)[metric::kTimeSyncSeconds] = Seconds(start);
  (*metrics)[metric::kSyncBytes] = static_cast<double>(stats->bytes);
  (*metrics)[metric::kWeightsVersion] = static_cast<double>(stats->version);
  return absl::OkStatus();
}

absl::Status JobLoop::Train(const v1::TrainRequest& train, Metrics* metrics) {
  v1::TrainResponse trained;
  const auto start = Clock::now();
  RLHF_RETURN_IF_ERROR(WithContext(clients_.Train(train, &trained), "train"));
  (*metrics)[metric::kTimeTrainSeconds] = Seconds(start);
  policy_version_ = trained.policy_version();
  for (const auto& [name, value] : trained.stats()) (*metrics)[name] = value;
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
      WithContext(clients_.SaveCheckpoint((staging / "policy").string(), nullptr), "checkpoint"));
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
    RLHF_RETURN_IF_ERROR(WithContext(status, absl::StrCat("iteration ", iteration)));
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
      WithContext(clients_.SaveCheckpoint(final_dir.string(), nullptr, /*weights_only=*/true),
                  "exporting the final policy"));
  hooks_.log(absl::StrCat("final policy: ", final_dir.string()));
  return absl::OkStatus();
}

bool IsRunnableAlgorithm(const std::string& algorithm) {
  return jobs::FindAlgorithm(algorithm) != nullptr;
}

absl::Status RunJob(const v1::Job& job, ServiceClients& clients, const RunHooks& hooks,
                    const RunOptions& options) {
  if (!IsRunnableAlgorithm(job.spec().algorithm())) {
    return absl::UnimplementedError(absl::StrCat("algorithm '", job.spec().algorithm(),
                                                 "' is not yet supported by the coordinator"));
  }
  JobLoop loop(job, clients, hooks, options);
  return CatchTorchErrors("job", [&] { return loop.Run(); });
}

}  // namespace rlhf::coordinator
