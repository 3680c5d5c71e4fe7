#include "services/actor/actor_core.h"

#include "absl/strings/str_cat.h"
#include "common/model/torch_status.h"
#include "common/rpc/tensor_codec.h"

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

ActorCore::ActorCore(std::unique_ptr<train::PolicyTrainer> trainer)
    : trainer_(std::move(trainer)) {}

int64_t ActorCore::policy_version() {
  std::lock_guard<std::mutex> lock(mutex_);
  return trainer_->policy_version();
}

absl::Status ActorCore::Evaluate(const v1::EvaluateRequest& request,
                                 v1::EvaluateResponse* response) {
  auto batch = SequenceBatchFromProto(request.batch(), "batch");
  if (!batch.ok()) return batch.status();
  const double temperature = request.temperature() == 0 ? 1.0 : request.temperature();
  std::lock_guard<std::mutex> lock(mutex_);
  auto result = trainer_->Evaluate(*batch, temperature, request.values());
  if (!result.ok()) return result.status();
  return model::CatchTorchErrors("Evaluate", [&]() -> absl::Status {
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

absl::Status ActorCore::Train(const v1::TrainRequest& request, v1::TrainResponse* response) {
  auto config = train::ParseAlgorithmConfig(request.algorithm_config_json());
  if (!config.ok()) return config.status();
  absl::StatusOr<train::TrainStats> stats;
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
           }) {
        auto tensor = OptionalTensor(field.has, field.proto, field.name);
        if (!tensor.ok()) return tensor.status();
        *field.out = *tensor;
      }
      std::lock_guard<std::mutex> lock(mutex_);
      stats = trainer_->TrainPolicyGradient(inputs, *config);
      break;
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
      std::lock_guard<std::mutex> lock(mutex_);
      stats = trainer_->TrainPreference(inputs, *config);
      break;
    }
    case v1::TrainRequest::kSft: {
      auto batch = SequenceBatchFromProto(request.sft(), "sft");
      if (!batch.ok()) return batch.status();
      std::lock_guard<std::mutex> lock(mutex_);
      stats = trainer_->TrainSft(*batch, *config);
      break;
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
      std::lock_guard<std::mutex> lock(mutex_);
      stats = trainer_->TrainKto(inputs, *config);
      break;
    }
    case v1::TrainRequest::DATA_NOT_SET:
      return absl::InvalidArgumentError(
          "TrainRequest has no data (set policy_gradient, preference, sft or unpaired)");
  }
  if (!stats.ok()) return stats.status();
  for (const auto& [name, value] : *stats) (*response->mutable_stats())[name] = value;
  std::lock_guard<std::mutex> lock(mutex_);
  response->set_policy_version(trainer_->policy_version());
  return absl::OkStatus();
}

absl::Status ActorCore::SaveCheckpoint(const v1::CheckpointRequest& request,
                                       v1::CheckpointResponse* response) {
  if (request.directory().empty()) return absl::InvalidArgumentError("directory is empty");
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto s = request.weights_only() ? trainer_->ExportPretrained(request.directory())
                                      : trainer_->SaveCheckpoint(request.directory());
      !s.ok()) {
    return s;
  }
  response->set_policy_version(trainer_->policy_version());
  return absl::OkStatus();
}

absl::Status ActorCore::LoadCheckpoint(const v1::CheckpointRequest& request,
                                       v1::CheckpointResponse* response) {
  if (request.directory().empty()) return absl::InvalidArgumentError("directory is empty");
  std::lock_guard<std::mutex> lock(mutex_);
  if (auto s = trainer_->LoadCheckpoint(request.directory()); !s.ok()) return s;
  response->set_policy_version(trainer_->policy_version());
  return absl::OkStatus();
}

absl::StatusOr<WeightSnapshot> ActorCore::SnapshotWeights(bool include_value_head) {
  std::lock_guard<std::mutex> lock(mutex_);
  return model::CatchTorchErrors("ExportWeights", [&]() -> absl::StatusOr<WeightSnapshot> {
    WeightSnapshot snapshot;
    snapshot.version = trainer_->policy_version();
    for (auto& [name, tensor] : trainer_->NamedWeights(include_value_head)) {
      snapshot.tensors.emplace_back(name, tensor.to(torch::kCPU).contiguous().clone());
    }
    return snapshot;
  });
}

}  // namespace rlhf::actor
