#pragma once
// The rollout generator's state and computation, without gRPC: a sampling copy of the
// policy, its weights version, batched KV-cache generation, and the atomic swap of a new
// weight set. Thread-safe: generation and weight swaps serialise on one mutex, so a
// Generate call sees either the old weights or the new ones, never a mix.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/causal_lm.h"
#include "common/serving/rollout/weight_assembler.h"
#include "rlhf/v1/rollout.pb.h"

namespace rlhf::rollout {

// Most completions one Generate call may ask for (prompts x samples_per_prompt).
inline constexpr int64_t kMaxCompletionsPerCall = 4096;

class RolloutCore {
 public:
  explicit RolloutCore(std::shared_ptr<model::CausalLm> model, int64_t version = 0);

  // n samples per prompt, completion i seeded with seed + i, in prompt-major order.
  // InvalidArgument names the bad field (offsets, token ids, sampling params, counts).
  // `abandoned` (optional) is polled between decode steps: true stops it (Cancelled).
  absl::Status Generate(const v1::GenerateRequest& request, v1::GenerateResponse* response,
                        const std::function<bool()>& abandoned = nullptr);

  // Parameter name -> shape of the serving model (what a weight stream must carry).
  std::map<std::string, std::vector<int64_t>> ParameterShapes();

  // Copies `weights` (validated by WeightAssembler) into the model under the lock and
  // serves the stream's version: the actor's policy_version, 0 for its initial weights
  // (a restarted rollout synced to a fresh actor reports what an in-process one does).
  // Returns the new version.
  absl::StatusOr<int64_t> SwapWeights(const AssembledWeights& weights);
  // SwapWeights for a rollout in the trainer's process: each parameter whose dtype and
  // device equal the given tensor's takes that tensor itself (no copy: the rollout then
  // samples from the trainer's own weights, so the caller must not let a Generate overlap
  // a training step, as the synchronous loop never does); the others are copied.
  absl::StatusOr<int64_t> ShareWeights(const AssembledWeights& weights);

  int64_t version();
  // The dtype the serving weights are held in.
  torch::ScalarType dtype();

 private:
  absl::StatusOr<int64_t> Install(const AssembledWeights& weights, bool share);

  std::shared_ptr<model::CausalLm> model_;
  std::mutex mutex_;  // guards model_ use and version_
  int64_t version_;
};

}  // namespace rlhf::rollout
