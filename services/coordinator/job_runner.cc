#include "services/coordinator/job_runner.h"

#include <cmath>
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
#include "common/model/device_flags.h"
#include "common/status/status_macros.h"
#include "common/status/torch_status.h"
#include "services/coordinator/checkpoint_dir.h"
#include "services/coordinator/job_loop.h"

namespace rlhf::coordinator {
namespace fs = std::filesystem;
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
  const fs::path root =
      options_.checkpoint_root.empty() ? fs::path("checkpoints") : options_.checkpoint_root;
  checkpoint_dir_ = fs::absolute(dir.empty() ? root / job_.id() : fs::path(dir));
  RLHF_RETURN_IF_ERROR(ClaimCheckpointDir(checkpoint_dir_, job_.id()));

  RLHF_RETURN_IF_ERROR(ResetKlController(spec_.kl().coef()));
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

absl::Status JobLoop::Sync(std::map<std::string, double>* metrics) {
  const auto start = Clock::now();
  auto stats = clients_.SyncWeights();
  if (IsRoleLost(stats.status()) && !hooks_.cancelled()) {
    // A rollout restarted mid-stream: the actor still holds this iteration's weights, so
    // pushing them again once every role serves is all it takes (a restarted actor shows
    // as a version mismatch below, and the job recovers from its checkpoint).
    hooks_.log(absl::StrCat("weight sync: ", stats.status().message(),
                            "; retrying once every role serves"));
    RLHF_RETURN_IF_ERROR(WithContext(clients_.WaitForConnected(), "weight sync"));
    stats = clients_.SyncWeights();
  }
  if (!stats.ok()) return WithContext(stats.status(), "weight sync");
  if (stats->version != policy_version_) {
    return RoleVersionMismatch("actor (exported to the rollout)", stats->version, policy_version_);
  }
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
  // One version per optimizer step: anything else means the actor lost its state.
  const auto steps = trained.stats().find(metric::kSteps);
  const int64_t expected =
      policy_version_ + (steps == trained.stats().end() ? 0 : std::llround(steps->second));
  if (trained.policy_version() != expected) {
    return RoleVersionMismatch("actor", trained.policy_version(), expected);
  }
  last_train_steps_ = trained.policy_version() - policy_version_;
  policy_version_ = trained.policy_version();
  for (const auto& [name, value] : trained.stats()) (*metrics)[name] = value;
  return absl::OkStatus();
}

absl::Status JobLoop::Run() {
  RLHF_RETURN_IF_ERROR(Prepare());
  last_checkpoint_ = job_.checkpoint_path();
  RLHF_RETURN_IF_ERROR(RestoreFrom(last_checkpoint_, options_.reset_actor));
  const int64_t interval = spec_.checkpoint().interval();
  int recoveries = 0;  // in a row, without an iteration done in between
  for (int64_t iteration = first_iteration_; iteration <= total_;) {
    if (hooks_.cancelled()) return absl::CancelledError("cancelled");
    IterationReport report;
    report.iteration = iteration;
    report.total_iterations = total_;
    absl::Status status = online() ? OnlineIteration(iteration, &report.metrics)
                                   : OfflineStep(iteration, &report.metrics);
    if (status.ok()) {
      nlohmann::json point(report.metrics);
      point["iteration"] = iteration;
      history_.push_back(point);
      if ((interval > 0 && iteration % interval == 0) || iteration == total_) {
        status = WriteCheckpoint(iteration, &report.checkpoint_path);
      }
    }
    if (IsRoleLost(status) && recoveries < kMaxRecoveries && !hooks_.cancelled()) {
      ++recoveries;
      RLHF_RETURN_IF_ERROR(Recover(iteration, status));
      iteration = first_iteration_;  // the iterations after the restored checkpoint again
      continue;
    }
    RLHF_RETURN_IF_ERROR(WithContext(status, absl::StrCat("iteration ", iteration)));
    recoveries = 0;
    if (!report.checkpoint_path.empty()) {
      last_checkpoint_ = report.checkpoint_path;
      PruneCheckpoints();
    }
    RLHF_RETURN_IF_ERROR(hooks_.on_iteration(report));
    ++iteration;
  }
  const fs::path final_dir = checkpoint_dir_ / "final";
  // The job's spec decides the dtype (never the actor's current files, which after a
  // restart are a float32 resume checkpoint): checkpoint.export_dtype, else policy_dir's.
  const std::string export_dtype =
      !spec_.checkpoint().export_dtype().empty()
          ? spec_.checkpoint().export_dtype()
          : model::DtypeName(model::CheckpointDtype(spec_.models().policy_dir()));
  auto export_final = [&]() -> absl::Status {
    int64_t exported = -1;
    RLHF_RETURN_IF_ERROR(WithContext(
        clients_.SaveCheckpoint(final_dir.string(), &exported, /*weights_only=*/true, export_dtype),
        "exporting the final policy"));
    if (exported != policy_version_) {
      return RoleVersionMismatch("actor", exported, policy_version_);
    }
    return absl::OkStatus();
  };
  absl::Status exported = export_final();
  if (IsRoleLost(exported)) {  // the last iteration always checkpoints: restore, export again
    RLHF_RETURN_IF_ERROR(Recover(total_, exported));
    exported = export_final();
  }
  RLHF_RETURN_IF_ERROR(exported);
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
