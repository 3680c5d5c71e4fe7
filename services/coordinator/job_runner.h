#pragma once
// One job's training loop, as DESIGN.md "One PPO iteration" describes, driven over the
// four services through ServiceClients (remote or in-process alike):
//
//   online RL (ppo, grpo, rloo, reinforce_pp): prompts -> rollout.Generate -> in parallel
//     reference.LogProbs, reward.Score, actor.Evaluate -> rewards / advantages here
//     (common/algo) -> actor.Train -> actor->rollout weight sync -> metrics, KL controller,
//     checkpoint every k iterations;
//   offline (sft, dpo, ipo, simpo, orpo, kto, reward_model): dataset batches -> reference
//     log-probs (DPO/IPO/KTO)
//     -> actor.Train -> metrics, checkpoints.
//
// Checkpoints are directories <checkpoint.dir>/iter-NNNNNN, made atomically (staging
// directory + rename): policy/ (the actor's weights in Hugging Face layout, value head and
// optimizer state) and coordinator_state.json (iteration, dataset cursor, KL coefficient,
// seed, the metrics so far). The final policy is exported to <checkpoint.dir>/final.
// A job with checkpoint_path set resumes after that checkpoint's iteration.
// Not thread-safe: one RunJob per job at a time.

#include <filesystem>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "rlhf/v1/job.pb.h"
#include "services/coordinator/service_clients.h"

namespace rlhf::coordinator {

// Algorithms RunJob can train: every JobSpec algorithm.
bool IsRunnableAlgorithm(const std::string& algorithm);

struct IterationReport {
  int64_t iteration = 0;  // 1-based, done
  int64_t total_iterations = 0;
  std::map<std::string, double> metrics;
  std::string checkpoint_path;  // set when this iteration wrote a checkpoint
};

struct RunHooks {
  // After every iteration (persist, publish). An error stops the job with that error.
  std::function<absl::Status(const IterationReport&)> on_iteration;
  // Polled between stages; true stops the job with Cancelled.
  std::function<bool()> cancelled = [] { return false; };
  // Human-readable progress ("resuming from ...", "exported ...").
  std::function<void(const std::string&)> log = [](const std::string&) {};
};

struct RunOptions {
  // The actor may hold another job's weights: reset it to the job's policy first.
  bool reset_actor = false;
  // A job without checkpoint.dir checkpoints to <checkpoint_root>/<job id>; empty:
  // checkpoints/<job id> under the working directory.
  std::filesystem::path checkpoint_root;
};

// Runs `job` (spec with defaults applied) to the end. Errors name the stage and the
// service; Cancelled when hooks.cancelled() turned true.
absl::Status RunJob(const v1::Job& job, ServiceClients& clients, const RunHooks& hooks,
                    const RunOptions& options = {});

}  // namespace rlhf::coordinator
