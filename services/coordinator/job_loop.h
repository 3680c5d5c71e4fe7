#pragma once
// JobLoop: one job's training loop (job_runner.h's RunJob), split by stage across
// job_runner.cc (prepare, restore, checkpoints, the loop), online_iteration.cc (rollout ->
// score -> advantages -> train -> sync -> record) and offline_step.cc. Internal to the
// coordinator library. Not thread-safe.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "common/algo/kl.h"
#include "common/jobs/algorithms.h"
#include "common/tokenizer/tokenizer.h"
#include "rlhf/v1/job.pb.h"
#include "services/coordinator/data_stream.h"
#include "services/coordinator/job_runner.h"
#include "services/coordinator/ragged_tokens.h"
#include "services/coordinator/service_clients.h"

namespace rlhf::coordinator {

using Clock = std::chrono::steady_clock;
using Rows = std::vector<std::vector<int64_t>>;
using Metrics = std::map<std::string, double>;

inline double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// A role went away or came back with other state: UNAVAILABLE from a call, or ABORTED
// from RoleVersionMismatch. The loop recovers from these (at most kMaxRecoveries in a row).
bool IsRoleLost(const absl::Status& status);
absl::Status RoleVersionMismatch(const char* role, int64_t served, int64_t expected);
inline constexpr int kMaxRecoveries = 3;

class JobLoop {
 public:
  JobLoop(const v1::Job& job, ServiceClients& clients, const RunHooks& hooks,
          const RunOptions& options)
      : job_(job), spec_(job.spec()), clients_(clients), hooks_(hooks), options_(options) {}

  absl::Status Run();

 private:
  // What one rollout produced: the prompts' examples, the sampled completions and the
  // batch (each prompt repeated per sample) every service scores.
  struct Rollout {
    std::vector<const jobs::TokenizedExample*> examples;  // one per prompt
    int64_t samples_per_prompt = 1;
    v1::GenerateResponse generated;
    Rows responses;
    RaggedLayout layout;
    v1::SequenceBatch sequences;
  };
  // The three answers about a rollout (asked in parallel).
  struct Judged {
    v1::LogProbsResponse reference;
    v1::ScoreResponse scores;
    v1::EvaluateResponse evaluated;
    // No Evaluate was asked for (SkipsEvaluate): `evaluated` holds the rollout's sampling
    // log-probs, for the KL metric only, and the TrainRequest leaves old_logprobs out.
    bool on_policy = false;
    bool scored = false;  // `scores` came with the rollout (dynamic sampling): no Score call
  };

  absl::Status Prepare();
  absl::Status LoadData();

  // job_checkpoints.cc
  absl::Status ResetKlController(double coef);
  // Every role and the loop's own state (data cursor, KL controller, metrics history) as
  // of `checkpoint` (empty: the job's start), then the rollout synced to the actor.
  // `reset_actor` false only for a fresh in-process actor at the start of a run.
  // When `checkpoint` does not verify or load, the older iter-* beside it are tried, newest
  // first (each skip logged); with none usable, the job's start.
  absl::Status RestoreFrom(const std::string& checkpoint, bool reset_actor);
  // One checkpoint: manifest, coordinator_state.json, the actor's LoadCheckpoint.
  absl::Status LoadCheckpointState(const std::filesystem::path& dir);
  // After a role was lost (`cause`): waits for the services, then RestoreFrom the latest
  // checkpoint of this run; the loop repeats the iterations after it.
  absl::Status Recover(int64_t iteration, const absl::Status& cause);
  absl::Status WriteCheckpoint(int64_t iteration, std::string* path);
  // checkpoint.keep_last: deletes this job's iter-* checkpoints older than the newest N.
  void PruneCheckpoints();
  absl::Status Sync(Metrics* metrics);
  // actor.Train: its stats into `metrics`, and the new policy version.
  absl::Status Train(const v1::TrainRequest& train, Metrics* metrics);

  // online_iteration.cc: the stages of DESIGN.md's "One PPO iteration".
  absl::Status OnlineIteration(int64_t iteration, Metrics* metrics);
  // Round r > 0 of an iteration (dynamic sampling) samples with another seed. The rollout
  // must serve policy `version` (passed in: a prefetch runs while Train moves
  // policy_version_).
  absl::Status GenerateRollout(int64_t iteration, int64_t round, int64_t version, Rollout* rollout,
                               Metrics* metrics);
  // The iteration's samples, generated (or dynamically sampled, with their scores) from
  // policy `version`.
  absl::Status SampleRollout(int64_t iteration, int64_t version, Rollout* rollout, Judged* judged,
                             Metrics* metrics);
  // layout and sequences from examples, responses and generated.completions.
  void CompleteRollout(Rollout* rollout);
  absl::Status ScoreRequestFor(const Rollout& rollout, v1::ScoreRequest* request);
  // Scores, reference log-probs and (unless SkipsEvaluate) the actor's Evaluate, in
  // parallel; the Score call is left out when judged->scored.
  absl::Status JudgeRollout(const Rollout& rollout, Judged* judged, Metrics* metrics);
  // dynamic_sampling.cc: DAPO's dynamic sampling. Generates and scores rounds of
  // batch_size prompts, keeping the groups whose rewards differ, until batch_size groups
  // are kept or generation.max_sampling_rounds is reached (then dropped groups fill the
  // batch); `rollout` and `scores` are the chosen groups in the order they were sampled.
  absl::Status SampleInformativeGroups(int64_t iteration, int64_t version, Rollout* rollout,
                                       v1::ScoreResponse* scores, Metrics* metrics);

  // rollout_pipeline.cc: runtime.max_policy_lag. TakeRollout hands out the iteration's
  // samples: the prefetched ones when they are for it and within the lag bound, else
  // sampled now. StartPrefetch samples `iteration`'s batch in the background from the
  // rollout's current weights; AwaitPrefetch waits for it (before the weight sync);
  // DropPrefetch waits and discards it (before a restore, on errors).
  absl::Status TakeRollout(int64_t iteration, Rollout* rollout, Judged* judged, Metrics* metrics);
  void StartPrefetch(int64_t iteration);
  void AwaitPrefetch(Metrics* metrics);
  void DropPrefetch();
  // The data cursor a checkpoint records: before a prefetched batch, which a resumed job
  // samples again (no prompt skipped, none trained on twice).
  int64_t CheckpointCursor() const;
  // Whether a batch of `rows` is trained in one on-policy step whose advantages never read
  // the old log-probs, so the actor's Evaluate pass is redundant (issue 16).
  bool SkipsEvaluate(int64_t rows) const;
  // The actor's TrainRequest for the rollout (advantages from common/algo) and the
  // rollout's reward/KL metrics.
  absl::Status BuildPolicyGradient(const Rollout& rollout, const Judged& judged,
                                   v1::TrainRequest* train, Metrics* metrics);

  // rejection_step.cc: the kept samples (rejection_filter.h) as an SFT TrainRequest and the
  // rollout's reward metrics; `train` stays empty when nothing is kept.
  absl::Status BuildRejectionSft(const Rollout& rollout, const Judged& judged,
                                 v1::TrainRequest* train, Metrics* metrics);

  // offline_step.cc
  absl::Status OfflineStep(int64_t iteration, Metrics* metrics);
  // reference.LogProbs of `batch`, summed per row into `out` (F32 [B]).
  absl::Status ReferenceSums(const v1::SequenceBatch& batch, v1::TensorProto* out);

  bool online() const { return online_; }

  const v1::Job& job_;
  const v1::JobSpec& spec_;
  ServiceClients& clients_;
  const RunHooks& hooks_;
  RunOptions options_;

  const jobs::AlgorithmFacts* facts_ = nullptr;  // set by Prepare
  bool online_ = false;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<DataStream> data_;
  std::unique_ptr<algo::KlController> kl_;
  std::filesystem::path checkpoint_dir_;
  std::string last_checkpoint_;  // the newest complete checkpoint of this job
  int64_t first_iteration_ = 1;
  int64_t total_ = 0;
  int64_t policy_version_ = 0;
  int64_t last_train_steps_ = 0;  // optimizer steps of the last Train call
  std::vector<int64_t> stop_ids_;
  nlohmann::json history_ = nlohmann::json::array();

  struct Prefetched {
    absl::Status status;
    Rollout rollout;
    Judged judged;  // scores only, with dynamic sampling
    Metrics metrics;
  };
  int64_t prefetch_iteration_ = 0;  // the iteration prefetch_ samples for; 0: none
  int64_t prefetch_cursor_ = 0;     // the data cursor before it
  // Last member: destroyed (joined) before anything the prefetch thread reads.
  std::future<Prefetched> prefetch_;
};

}  // namespace rlhf::coordinator
