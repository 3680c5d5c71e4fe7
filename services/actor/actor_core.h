#pragma once
// ActorCore: the actor's state (one train::PolicyTrainer) behind the wire types of
// rlhf.v1.ActorService. It only translates: protos -> train inputs -> protos; all the
// training lives in common/train. Errors are absl::Status naming the bad field.
// Thread-safe: one mutex serialises every call on the trainer (a model runs one forward
// or optimizer step at a time).

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
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
  explicit ActorCore(std::unique_ptr<train::PolicyTrainer> trainer);

  absl::Status Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response);
  absl::Status Train(const v1::TrainRequest& request, v1::TrainResponse* response);
  absl::Status SaveCheckpoint(const v1::CheckpointRequest& request,
                              v1::CheckpointResponse* response);
  absl::Status LoadCheckpoint(const v1::CheckpointRequest& request,
                              v1::CheckpointResponse* response);
  absl::StatusOr<WeightSnapshot> SnapshotWeights(bool include_value_head);

  int64_t policy_version();

 private:
  std::mutex mutex_;
  std::unique_ptr<train::PolicyTrainer> trainer_;
};

// rlhf.v1.SequenceBatch -> train::SequenceBatch; InvalidArgument naming `what` and the
// problem (bad offsets, prompt/response counts that differ).
absl::StatusOr<train::SequenceBatch> SequenceBatchFromProto(const v1::SequenceBatch& proto,
                                                            const char* what);

}  // namespace rlhf::actor
