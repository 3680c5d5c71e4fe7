// JobLoop's checkpoints: writing one (atomically, a SHA-256 manifest last, fsynced), and
// bringing every role back to the newest one that verifies (older ones when it does not),
// at the start of a run and whenever a role was lost mid-job (a restarted actor or rollout
// reports another policy version, or a call found it gone): the job continues from its
// latest checkpoint, never from a restarted role's start-up weights.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/io/atomic_file.h"
#include "common/io/checkpoint_manifest.h"
#include "common/status/status_macros.h"
#include "services/coordinator/job_loop.h"

namespace rlhf::coordinator {
namespace fs = std::filesystem;
namespace {

constexpr char kStateFile[] = "coordinator_state.json";

}  // namespace

bool IsRoleLost(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kAborted;
}

absl::Status RoleVersionMismatch(const char* role, int64_t served, int64_t expected) {
  return absl::AbortedError(absl::StrCat("the ", role, " has policy version ", served,
                                         ", the job expects ", expected,
                                         " (restarted or replaced)"));
}

absl::Status JobLoop::ResetKlController(double coef) {
  const v1::KlSpec& kl = spec_.kl();
  if (!kl.adaptive()) {
    kl_ = std::make_unique<algo::FixedKlController>(coef);
    return absl::OkStatus();
  }
  auto adaptive =
      algo::AdaptiveKlController::Create(coef, kl.target(), static_cast<double>(kl.horizon()));
  if (!adaptive.ok()) return WithContext(adaptive.status(), "kl");
  kl_ = std::make_unique<algo::AdaptiveKlController>(*adaptive);
  return absl::OkStatus();
}

// `checkpoint`, then the older iter-* checkpoints beside it, newest first.
std::vector<fs::path> CheckpointCandidates(const std::string& checkpoint) {
  std::vector<fs::path> candidates;
  if (checkpoint.empty()) return candidates;
  const fs::path newest = checkpoint;
  candidates.push_back(newest);
  std::vector<fs::path> older;
  std::error_code error;
  for (fs::directory_iterator it(newest.parent_path(), error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("iter-", 0) == 0 && it->path() != newest && name < newest.filename().string()) {
      older.push_back(it->path());
    }
  }
  std::sort(older.rbegin(), older.rend());  // iter-NNNNNN: newest first
  candidates.insert(candidates.end(), older.begin(), older.end());
  return candidates;
}

absl::Status JobLoop::LoadCheckpointState(const fs::path& dir) {
  if (absl::Status verified = io::VerifyCheckpointManifest(dir); !verified.ok()) {
    if (!absl::IsNotFound(verified)) return verified;
    hooks_.log(absl::StrCat(dir.string(),
                            " has no manifest (an older checkpoint): loading it "
                            "unverified"));
  }
  std::ifstream in(dir / kStateFile);
  nlohmann::json state = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!in || !state.is_object() || !state.contains("iteration") || !state.contains("cursor") ||
      !state["iteration"].is_number_integer() || !state["cursor"].is_number_integer()) {
    return absl::DataLossError(
        absl::StrCat("checkpoint ", dir.string(), ": ", kStateFile, " is missing or malformed"));
  }
  int64_t version = 0;
  RLHF_RETURN_IF_ERROR(WithContext(clients_.LoadCheckpoint((dir / "policy").string(), &version),
                                   "restoring the actor"));
  policy_version_ = version;
  first_iteration_ = state["iteration"].get<int64_t>() + 1;
  data_->set_cursor(state["cursor"].get<int64_t>());
  const bool saved_coef = state.contains("kl_coef") && state["kl_coef"].is_number();
  RLHF_RETURN_IF_ERROR(ResetKlController(
      spec_.kl().adaptive() && saved_coef ? state["kl_coef"].get<double>() : spec_.kl().coef()));
  history_ = state.contains("metrics") && state["metrics"].is_array() ? state["metrics"]
                                                                      : nlohmann::json::array();
  return absl::OkStatus();
}

absl::Status JobLoop::RestoreFrom(const std::string& checkpoint, bool reset_actor) {
  DropPrefetch();  // sampled from weights and a cursor about to be replaced
  bool restored = false;
  for (const fs::path& candidate : CheckpointCandidates(checkpoint)) {
    absl::Status loaded = LoadCheckpointState(candidate);
    if (IsRoleLost(loaded)) return loaded;  // the caller recovers from that
    if (!loaded.ok()) {
      hooks_.log(absl::StrCat("skipping checkpoint ", candidate.string(), ": ", loaded.message()));
      continue;
    }
    hooks_.log(absl::StrCat("resuming after iteration ", first_iteration_ - 1, " from ",
                            candidate.string()));
    last_checkpoint_ = candidate.string();
    restored = true;
    break;
  }
  if (!restored) {
    if (!checkpoint.empty()) hooks_.log("no usable checkpoint: starting the job again");
    if (reset_actor || !checkpoint.empty()) {
      RLHF_RETURN_IF_ERROR(
          WithContext(clients_.LoadCheckpoint(fs::absolute(spec_.models().policy_dir()).string(),
                                              &policy_version_),
                      "resetting the actor to models.policy_dir"));
    }
    last_checkpoint_.clear();
    first_iteration_ = 1;
    data_->set_cursor(0);
    RLHF_RETURN_IF_ERROR(ResetKlController(spec_.kl().coef()));
    history_ = nlohmann::json::array();
  }
  if (online() && (reset_actor || !checkpoint.empty())) {
    Metrics ignored;
    RLHF_RETURN_IF_ERROR(Sync(&ignored));
  }
  return absl::OkStatus();
}

absl::Status JobLoop::Recover(int64_t iteration, const absl::Status& cause) {
  hooks_.log(absl::StrCat("iteration ", iteration, ": ", cause.message(),
                          "; restoring every role from ",
                          last_checkpoint_.empty() ? "the job's start" : last_checkpoint_));
  // A role still down after the connect timeout fails the job (named, within that time).
  RLHF_RETURN_IF_ERROR(WithContext(clients_.WaitForConnected(), "recovering"));
  absl::Status restored = RestoreFrom(last_checkpoint_, /*reset_actor=*/true);
  // Every role answered, yet the restore lost one again (an actor group still re-forming
  // around a restarted rank): wait for them and restore again, a few times.
  for (int attempt = 1; IsRoleLost(restored) && attempt < kMaxRecoveries && !hooks_.cancelled();
       ++attempt) {
    hooks_.log(absl::StrCat("recovering: ", restored.message(), "; restoring again"));
    RLHF_RETURN_IF_ERROR(WithContext(clients_.WaitForConnected(), "recovering"));
    restored = RestoreFrom(last_checkpoint_, /*reset_actor=*/true);
  }
  return WithContext(restored, "recovering");
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
  int64_t saved = -1;
  RLHF_RETURN_IF_ERROR(
      WithContext(clients_.SaveCheckpoint((staging / "policy").string(), &saved), "checkpoint"));
  // An actor restarted since the last call would save its start-up weights as this job's.
  if (saved != policy_version_) return RoleVersionMismatch("actor", saved, policy_version_);
  nlohmann::json state = {
      {"format", "rlhf.coordinator.v1"},   {"job_id", job_.id()},
      {"algorithm", spec_.algorithm()},    {"iteration", iteration},
      {"total_iterations", total_},        {"cursor", CheckpointCursor()},
      {"kl_coef", kl_->value()},           {"seed", spec_.runtime().seed()},
      {"policy_version", policy_version_}, {"metrics", history_},
  };
  RLHF_RETURN_IF_ERROR(io::WriteFileAtomically(staging / kStateFile, state.dump(1) + "\n"));
  RLHF_RETURN_IF_ERROR(io::WriteCheckpointManifest(staging));  // last: it vouches for the rest
  fs::remove_all(final_dir, error);  // a stale one from a run that died after its rename
  fs::rename(staging, final_dir, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot rename ", staging.string(), " to ",
                                            final_dir.string(), ": ", error.message()));
  }
  // The job store will record this path durably: the rename must be as durable first.
  RLHF_RETURN_IF_ERROR(io::SyncParentDirectory(final_dir));
  *path = final_dir.string();
  return absl::OkStatus();
}

void JobLoop::PruneCheckpoints() {
  const int64_t keep = spec_.checkpoint().keep_last();
  if (keep <= 0) return;
  std::vector<fs::path> checkpoints;  // iter-NNNNNN: the name orders them
  std::error_code error;
  for (fs::directory_iterator it(checkpoint_dir_, error), end; !error && it != end;
       it.increment(error)) {
    if (it->path().filename().string().rfind("iter-", 0) == 0) checkpoints.push_back(it->path());
  }
  std::sort(checkpoints.begin(), checkpoints.end());
  for (int64_t i = 0; i + keep < static_cast<int64_t>(checkpoints.size()); ++i) {
    fs::remove_all(checkpoints[i], error);
    if (error)
      hooks_.log(absl::StrCat("cannot delete ", checkpoints[i].string(), ": ", error.message()));
  }
}

}  // namespace rlhf::coordinator
