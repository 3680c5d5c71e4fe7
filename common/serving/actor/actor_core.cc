#include "common/serving/actor/actor_core.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/io/confined_path.h"
#include "common/model/device_flags.h"
#include "common/rpc/tensor_codec.h"
#include "common/serving/actor/train_config_proto.h"
#include "common/status/torch_status.h"
#include "common/train/batch_shard.h"

namespace rlhf::actor {
namespace {

absl::Status Prefixed(const char* what, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

// An unset field gives an undefined tensor; a set one must decode.
absl::StatusOr<torch::Tensor> OptionalTensor(bool has, const v1::TensorProto& proto,
                                             const char* what) {
  if (!has) return torch::Tensor();
  auto tensor = rpc::TensorFromProto(proto);
  if (!tensor.ok()) return Prefixed(what, tensor.status());
  return *tensor;
}

}  // namespace

absl::StatusOr<train::SequenceBatch> SequenceBatchFromProto(const v1::SequenceBatch& proto,
                                                            const char* what) {
  if (auto s = rpc::CheckPaddedBatchSize(proto); !s.ok()) return s;
  auto prompts = rpc::TokensFromProto(proto.prompts());
  if (!prompts.ok()) return Prefixed(absl::StrCat(what, ".prompts").c_str(), prompts.status());
  auto responses = rpc::TokensFromProto(proto.responses());
  if (!responses.ok()) {
    return Prefixed(absl::StrCat(what, ".responses").c_str(), responses.status());
  }
  if (prompts->size() != responses->size()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " has ", prompts->size(), " prompts but ",
                                                   responses->size(), " responses"));
  }
  if (prompts->empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  return train::SequenceBatch{std::move(*prompts), std::move(*responses)};
}

ActorCore::ActorCore(std::unique_ptr<train::PolicyTrainer> trainer,
                     std::shared_ptr<train::DataParallelGroup> group)
    : trainer_(std::move(trainer)), group_(std::move(group)) {}

void ActorCore::ConfineCheckpoints(std::filesystem::path root, std::filesystem::path model_dir) {
  checkpoint_root_ = std::move(root);
  model_dir_ = std::move(model_dir);
}

absl::StatusOr<std::filesystem::path> ActorCore::CheckpointDir(const v1::CheckpointRequest& request,
                                                               bool loading) const {
  if (request.directory().empty()) return absl::InvalidArgumentError("directory is empty");
  if (loading && !model_dir_.empty() && io::IsUnder(model_dir_, request.directory()) &&
      io::IsUnder(request.directory(), model_dir_)) {
    return std::filesystem::path(request.directory());  // the initial policy: a reset
  }
  return io::ResolveUnder(checkpoint_root_, request.directory(),
                          "directory (the actor's --checkpoint-root)");
}

int64_t ActorCore::policy_version() {
  std::lock_guard<std::mutex> lock(mutex_);
  return trainer_->policy_version();
}

absl::Status ActorCore::Evaluate(const v1::EvaluateRequest& request,
                                 v1::EvaluateResponse* response) {
  auto batch = SequenceBatchFromProto(request.batch(), "batch");
  if (!batch.ok()) return batch.status();
  const double temperature = request.temperature() == 0 ? 1.0 : request.temperature();
  auto precision = PrecisionFromProto(request.precision());
  if (!precision.ok()) return precision.status();
  std::lock_guard<std::mutex> lock(mutex_);
  auto result = trainer_->Evaluate(*batch, temperature, request.values(), *precision);
  if (!result.ok()) return result.status();
  return CatchTorchErrors("Evaluate", [&]() -> absl::Status {
    if (auto s = rpc::TensorToProto(result->logprobs, response->mutable_logprobs()); !s.ok()) {
      return s;
    }
    if (auto s = rpc::TensorToProto(result->entropy, response->mutable_entropy()); !s.ok()) {
      return s;
    }
    if (result->values.defined()) {
      if (auto s = rpc::TensorToProto(result->values, response->mutable_values()); !s.ok()) {
        return s;
      }
    }
    response->set_policy_version(result->policy_version);
    return absl::OkStatus();
  });
}

absl::StatusOr<ActorCore::TrainStep> ActorCore::PrepareTrain(const v1::TrainRequest& request) {
  auto config = AlgorithmConfigFromProto(request.config());
  if (!config.ok()) return config.status();
  const int64_t rank = group_ ? group_->rank() : 0;
  const int64_t world = group_ ? group_->world_size() : 1;
  switch (request.data_case()) {
    case v1::TrainRequest::kPolicyGradient: {
      const v1::PolicyGradientBatch& data = request.policy_gradient();
      train::PolicyGradientInputs inputs;
      auto batch = SequenceBatchFromProto(data.batch(), "policy_gradient.batch");
      if (!batch.ok()) return batch.status();
      inputs.batch = std::move(*batch);
      struct Field {
        bool has;
        const v1::TensorProto& proto;
        const char* name;
        torch::Tensor* out;
      };
      for (const Field& field : {
               Field{data.has_old_logprobs(), data.old_logprobs(), "old_logprobs",
                     &inputs.old_logprobs},
               Field{data.has_advantages(), data.advantages(), "advantages", &inputs.advantages},
               Field{data.has_returns(), data.returns(), "returns", &inputs.returns},
               Field{data.has_old_values(), data.old_values(), "old_values", &inputs.old_values},
               Field{data.has_ref_logprobs(), data.ref_logprobs(), "ref_logprobs",
                     &inputs.ref_logprobs},
               Field{data.has_rollout_logprobs(), data.rollout_logprobs(), "rollout_logprobs",
                     &inputs.rollout_logprobs},
           }) {
        auto tensor = OptionalTensor(field.has, field.proto, field.name);
        if (!tensor.ok()) return tensor.status();
        *field.out = *tensor;
      }
      auto shard = train::ShardRows(inputs, rank, world);
      if (!shard.ok()) return shard.status();
      return TrainStep([inputs = std::move(*shard), config = *config](train::PolicyTrainer& t) {
        return t.TrainPolicyGradient(inputs, config);
      });
    }
    case v1::TrainRequest::kPreference: {
      const v1::PreferenceBatch& data = request.preference();
      train::PreferenceInputs inputs;
      auto chosen = SequenceBatchFromProto(data.chosen(), "preference.chosen");
      if (!chosen.ok()) return chosen.status();
      auto rejected = SequenceBatchFromProto(data.rejected(), "preference.rejected");
      if (!rejected.ok()) return rejected.status();
      inputs.chosen = std::move(*chosen);
      inputs.rejected = std::move(*rejected);
      auto ref_chosen = OptionalTensor(data.has_ref_chosen_logprobs(), data.ref_chosen_logprobs(),
                                       "ref_chosen_logprobs");
      if (!ref_chosen.ok()) return ref_chosen.status();
      auto ref_rejected = OptionalTensor(data.has_ref_rejected_logprobs(),
                                         data.ref_rejected_logprobs(), "ref_rejected_logprobs");
      if (!ref_rejected.ok()) return ref_rejected.status();
      inputs.ref_chosen_logprobs = *ref_chosen;
      inputs.ref_rejected_logprobs = *ref_rejected;
      auto shard = train::ShardRows(inputs, rank, world);
      if (!shard.ok()) return shard.status();
      return TrainStep([inputs = std::move(*shard), config = *config](train::PolicyTrainer& t) {
        return t.TrainPreference(inputs, config);
      });
    }
    case v1::TrainRequest::kSft: {
      auto batch = SequenceBatchFromProto(request.sft(), "sft");
      if (!batch.ok()) return batch.status();
      auto shard = train::ShardRows(*batch, rank, world);
      if (!shard.ok()) return shard.status();
      return TrainStep([inputs = std::move(*shard), config = *config](train::PolicyTrainer& t) {
        return t.TrainSft(inputs, config);
      });
    }
    case v1::TrainRequest::kUnpaired: {
      const v1::UnpairedBatch& data = request.unpaired();
      train::UnpairedInputs inputs;
      auto batch = SequenceBatchFromProto(data.batch(), "unpaired.batch");
      if (!batch.ok()) return batch.status();
      auto kl_batch = SequenceBatchFromProto(data.kl_batch(), "unpaired.kl_batch");
      if (!kl_batch.ok()) return kl_batch.status();
      inputs.batch = std::move(*batch);
      inputs.kl_batch = std::move(*kl_batch);
      inputs.desirable.assign(data.desirable().begin(), data.desirable().end());
      auto ref = OptionalTensor(data.has_ref_logprobs(), data.ref_logprobs(), "ref_logprobs");
      if (!ref.ok()) return ref.status();
      auto ref_kl =
          OptionalTensor(data.has_ref_kl_logprobs(), data.ref_kl_logprobs(), "ref_kl_logprobs");
      if (!ref_kl.ok()) return ref_kl.status();
      inputs.ref_logprobs = *ref;
      inputs.ref_kl_logprobs = *ref_kl;
      auto shard = train::ShardRows(inputs, rank, world);
      if (!shard.ok()) return shard.status();
      return TrainStep([inputs = std::move(*shard), config = *config](train::PolicyTrainer& t) {
        return t.TrainKto(inputs, config);
      });
    }
    case v1::TrainRequest::DATA_NOT_SET:
      return absl::InvalidArgumentError(
          "TrainRequest has no data (set policy_gradient, preference, sft or unpaired)");
  }
  return absl::InvalidArgumentError("TrainRequest: unknown data");
}

absl::Status ActorCore::Train(const v1::TrainRequest& request, v1::TrainResponse* response,
                              std::function<bool()> stop) {
  // Decoding and sharding fail (bad input) before any rank is asked to do anything.
  auto step = PrepareTrain(request);
  if (!step.ok()) return step.status();
  std::lock_guard<std::mutex> lock(mutex_);
  if (group_ != nullptr) {
    v1::ActorGroupCommand command;
    *command.mutable_train() = request;
    if (auto s = SendToGroup(command); !s.ok()) return s;
  }
  auto stats = RunTrainStep(*step, std::move(stop));
  if (!stats.ok()) return stats.status();
  for (const auto& [name, value] : *stats) (*response->mutable_stats())[name] = value;
  response->set_policy_version(trainer_->policy_version());
  return absl::OkStatus();
}

absl::StatusOr<train::TrainStats> ActorCore::RunTrainStep(const TrainStep& step,
                                                          std::function<bool()> stop) {
  trainer_->set_interrupt(std::move(stop));
  absl::StatusOr<train::TrainStats> stats = step(*trainer_);
  trainer_->set_interrupt(nullptr);
  if (group_ == nullptr) return stats;
  if (auto s = AgreeOnOutcome(stats.status()); !s.ok()) return s;
  // Every rank's stats are means over its shard: report their mean over ranks.
  std::vector<double> values;
  for (const auto& [name, value] : *stats) values.push_back(value);
  torch::Tensor sum = torch::tensor(values, torch::kFloat64);
  if (auto s = group_->AllReduceSum(sum); !s.ok()) return s;
  size_t i = 0;
  for (auto& [name, value] : *stats) value = sum[i++].item<double>() / group_->world_size();
  return stats;
}

absl::Status ActorCore::SaveCheckpoint(const v1::CheckpointRequest& request,
                                       v1::CheckpointResponse* response) {
  auto dir = CheckpointDir(request, /*loading=*/false);
  if (!dir.ok()) return dir.status();
  std::optional<torch::ScalarType> dtype;
  if (!request.dtype().empty()) {
    auto parsed = model::ParseDtype(request.dtype());
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("dtype: want float32, bfloat16 or float16, got '", request.dtype(), "'"));
    }
    if (!request.weights_only()) {
      return absl::InvalidArgumentError("dtype applies to a weights_only export only");
    }
    dtype = *parsed;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto s = request.weights_only() ? trainer_->ExportPretrained(*dir, dtype)
                                      : trainer_->SaveCheckpoint(*dir);
      !s.ok()) {
    return s;
  }
  response->set_policy_version(trainer_->policy_version());
  return absl::OkStatus();
}

absl::Status ActorCore::LoadCheckpoint(const v1::CheckpointRequest& request,
                                       v1::CheckpointResponse* response) {
  auto dir = CheckpointDir(request, /*loading=*/true);
  if (!dir.ok()) return dir.status();
  std::lock_guard<std::mutex> lock(mutex_);
  absl::Status loaded;
  if (group_ != nullptr) {
    v1::ActorGroupCommand command;
    *command.mutable_load_checkpoint() = request;
    command.mutable_load_checkpoint()->set_directory(dir->string());
    if (auto s = SendToGroup(command); !s.ok()) return s;
    loaded = AgreeOnOutcome(trainer_->LoadCheckpoint(*dir));
  } else {
    loaded = trainer_->LoadCheckpoint(*dir);
  }
  if (!loaded.ok()) return loaded;
  response->set_policy_version(trainer_->policy_version());
  return absl::OkStatus();
}

absl::Status ActorCore::SendToGroup(const v1::ActorGroupCommand& command) {
  // A rank was lost or restarted since the last command: re-form the group (waits for
  // every rank) and give every rank this rank's training state before going on.
  auto reform = group_->NeedsReform();
  if (!reform.ok()) return reform.status();
  if (*reform) {
    std::cerr << "rlhf-actor: re-forming the data-parallel group (a rank was lost or "
                 "restarted)"
              << std::endl;
    if (auto s = group_->Reform(); !s.ok()) return s;
    v1::ActorGroupCommand sync;
    sync.set_sync_state(true);
    if (auto s = group_->PublishCommand(sync.SerializeAsString()); !s.ok()) return s;
    if (auto s = AgreeOnOutcome(trainer_->BroadcastState(*group_)); !s.ok()) return s;
    std::cerr << "rlhf-actor: the group re-formed; every rank has policy version "
              << trainer_->policy_version() << std::endl;
  }
  return group_->PublishCommand(command.SerializeAsString());
}

absl::Status ActorCore::AgreeOnOutcome(const absl::Status& local) {
  torch::Tensor failed = torch::zeros({group_->world_size()}, torch::kInt64);
  failed[group_->rank()] = local.ok() ? 0 : 1;
  if (auto s = group_->AllReduceSum(failed); !s.ok()) return s;
  if (!local.ok()) return local;
  std::vector<int64_t> ranks;
  for (int64_t r = 0; r < failed.size(0); ++r) {
    if (failed[r].item<int64_t>() != 0) ranks.push_back(r);
  }
  if (ranks.empty()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("actor rank(s) ", absl::StrJoin(ranks, ", "),
                                          " failed this step; their logs say why"));
}

absl::Status ActorCore::SyncWeightsFromLeader() {
  // A rank that joined late gets the whole state when rank 0 re-forms the group.
  if (group_ == nullptr || group_->joined_late()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<torch::Tensor> weights;
  for (auto& [name, tensor] : trainer_->NamedWeights(/*include_value_head=*/true)) {
    weights.push_back(tensor);
  }
  return group_->BroadcastTensors(weights);
}

absl::Status ActorCore::StopGroup() {
  if (group_ == nullptr || group_->rank() != 0) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(mutex_);
  v1::ActorGroupCommand command;
  command.set_stop(true);
  return group_->PublishCommand(command.SerializeAsString());
}

void ActorCore::LogFollowerError(const char* what, const absl::Status& status) {
  std::cerr << "rlhf-actor rank " << group_->rank() << ": " << what << " failed: " << status
            << std::endl;
}

absl::Status ActorCore::FollowLeader() {
  if (group_ == nullptr || group_->rank() == 0) {
    return absl::FailedPreconditionError("FollowLeader runs on actor ranks > 0");
  }
  while (true) {
    absl::StatusOr<std::string> bytes = group_->NextCommand();
    if (!bytes.ok()) return bytes.status();
    v1::ActorGroupCommand command;
    if (!command.ParseFromString(*bytes)) {
      return absl::InternalError("rank 0 sent a command this rank cannot parse");
    }
    switch (command.command_case()) {
      case v1::ActorGroupCommand::kTrain: {
        // Rank 0 prepared the same request without error, so this cannot fail on input.
        auto step = PrepareTrain(command.train());
        if (!step.ok()) return step.status();
        std::lock_guard<std::mutex> lock(mutex_);
        auto stats = RunTrainStep(*step);  // rank 0 reports the outcome to its caller
        if (!stats.ok()) LogFollowerError("train step", stats.status());
        break;
      }
      case v1::ActorGroupCommand::kLoadCheckpoint: {
        std::lock_guard<std::mutex> lock(mutex_);
        absl::Status loaded = trainer_->LoadCheckpoint(command.load_checkpoint().directory());
        if (!loaded.ok()) LogFollowerError("load checkpoint", loaded);
        AgreeOnOutcome(loaded).IgnoreError();
        break;
      }
      case v1::ActorGroupCommand::kSyncState: {
        std::lock_guard<std::mutex> lock(mutex_);
        absl::Status synced = trainer_->BroadcastState(*group_);
        if (!synced.ok()) LogFollowerError("state sync", synced);
        AgreeOnOutcome(synced).IgnoreError();
        if (synced.ok()) {
          std::cerr << "rlhf-actor rank " << group_->rank()
                    << ": joined the group at policy version " << trainer_->policy_version()
                    << std::endl;
        }
        break;
      }
      case v1::ActorGroupCommand::kStop:
        return absl::OkStatus();
      case v1::ActorGroupCommand::COMMAND_NOT_SET:
        return absl::InternalError("rank 0 sent an empty command");
    }
  }
}

absl::StatusOr<WeightSnapshot> ActorCore::SnapshotWeights(bool include_value_head,
                                                          torch::ScalarType dtype) {
  std::lock_guard<std::mutex> lock(mutex_);
  return CatchTorchErrors("ExportWeights", [&]() -> absl::StatusOr<WeightSnapshot> {
    WeightSnapshot snapshot;
    snapshot.version = trainer_->policy_version();
    for (auto& [name, tensor] : trainer_->NamedWeights(include_value_head)) {
      snapshot.tensors.emplace_back(name, tensor.to(torch::kCPU, dtype).contiguous().clone());
    }
    return snapshot;
  });
}

absl::Status ActorCore::VisitWeights(
    bool include_value_head,
    const std::function<absl::Status(
        int64_t version, const std::vector<std::pair<std::string, torch::Tensor>>& weights)>&
        visit) {
  std::lock_guard<std::mutex> lock(mutex_);
  return CatchTorchErrors("VisitWeights", [&] {
    return visit(trainer_->policy_version(), trainer_->NamedWeights(include_value_head));
  });
}

}  // namespace rlhf::actor
