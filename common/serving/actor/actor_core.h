#pragma once
// ActorCore: the actor's state (one train::PolicyTrainer) behind the wire types of
// rlhf.v1.ActorService. It only translates: protos -> train inputs -> protos; all the
// training lives in common/train. Errors are absl::Status naming the bad field.
// Thread-safe: one mutex serialises every call on the trainer (a model runs one forward
// or optimizer step at a time).
//
// Data parallel: with a DataParallelGroup of N ranks, rank 0 serves the RPCs and sends
// every Train and LoadCheckpoint to the other ranks (ActorGroupCommand, a c10d
// broadcast), which run FollowLeader instead of a server. Each rank trains on its 1/N of
// the rows; gradients are averaged, so all ranks hold the same weights and rank 0 alone
// answers Evaluate, ExportWeights and SaveCheckpoint. Train's stats are means over ranks.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/train/data_parallel_group.h"
#include "common/train/policy_trainer.h"
#include "rlhf/v1/actor.pb.h"

namespace rlhf::actor {

// A consistent copy of the weights for ExportWeights: CPU, contiguous, taken under the lock.
struct WeightSnapshot {
  int64_t version = 0;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
};

class ActorCore {
 public:
  // `group` is null for a single rank; the trainer must use it as its all-reducer.
  explicit ActorCore(std::unique_ptr<train::PolicyTrainer> trainer,
                     std::shared_ptr<train::DataParallelGroup> group = nullptr);

  // Confines Save/LoadCheckpoint to directories under `root` (rlhf-actor
  // --checkpoint-root); LoadCheckpoint may also name `model_dir`, the initial policy (a
  // job's reset). A relative directory resolves against `root`. Before serving; by
  // default nothing is confined (`rlhf local`: the user's own process).
  void ConfineCheckpoints(std::filesystem::path root, std::filesystem::path model_dir);

  absl::Status Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response);
  // `stop` (may be null) is polled before every optimizer step: the caller went away or
  // its deadline passed. Then Train answers CANCELLED and frees the actor for other calls.
  absl::Status Train(const v1::TrainRequest& request, v1::TrainResponse* response,
                     std::function<bool()> stop = nullptr);
  absl::Status SaveCheckpoint(const v1::CheckpointRequest& request,
                              v1::CheckpointResponse* response);
  absl::Status LoadCheckpoint(const v1::CheckpointRequest& request,
                              v1::CheckpointResponse* response);
  // A copy of every weight on the CPU, converted to `dtype` (the wire's).
  absl::StatusOr<WeightSnapshot> SnapshotWeights(bool include_value_head,
                                                 torch::ScalarType dtype = torch::kFloat32);

  // Calls `visit` with the policy version and the trainer's own weights (not copies), under
  // the lock: nothing trains while it runs. For an in-process rollout to copy them.
  absl::Status VisitWeights(
      bool include_value_head,
      const std::function<absl::Status(
          int64_t version, const std::vector<std::pair<std::string, torch::Tensor>>& weights)>&
          visit);

  int64_t policy_version();

  // Every rank: rank 0's weights to all (so the ranks start identical). Collective.
  absl::Status SyncWeightsFromLeader();
  // Ranks > 0: runs rank 0's commands until it sends stop (OK) or the group fails.
  absl::Status FollowLeader();
  // Rank 0: tells the other ranks to exit (at shutdown). No-op without a group.
  absl::Status StopGroup();

 private:
  using TrainStep = std::function<absl::StatusOr<train::TrainStats>(train::PolicyTrainer&)>;
  // Decodes `request` and takes this rank's shard; InvalidArgument for bad input.
  absl::StatusOr<TrainStep> PrepareTrain(const v1::TrainRequest& request);
  // Runs the step; with a group, agrees on the outcome and averages the stats. Locked.
  absl::StatusOr<train::TrainStats> RunTrainStep(const TrainStep& step,
                                                 std::function<bool()> stop = nullptr);
  // Rank 0: broadcasts `command` to the other ranks. Locked.
  absl::Status SendToGroup(const v1::ActorGroupCommand& command);
  // Every rank: the step's outcome on all ranks; an error names the ranks that failed.
  absl::Status AgreeOnOutcome(const absl::Status& local);
  void LogFollowerError(const char* what, const absl::Status& status);
  // The request's directory, resolved and checked against ConfineCheckpoints.
  absl::StatusOr<std::filesystem::path> CheckpointDir(const v1::CheckpointRequest& request,
                                                      bool loading) const;
  std::filesystem::path checkpoint_root_, model_dir_;

  std::mutex mutex_;
  std::unique_ptr<train::PolicyTrainer> trainer_;
  std::shared_ptr<train::DataParallelGroup> group_;
};

// rlhf.v1.SequenceBatch -> train::SequenceBatch; InvalidArgument naming `what` and the
// problem (bad offsets, prompt/response counts that differ).
absl::StatusOr<train::SequenceBatch> SequenceBatchFromProto(const v1::SequenceBatch& proto,
                                                            const char* what);

}  // namespace rlhf::actor
