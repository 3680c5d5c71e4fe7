#include "services/rollout/rollout_service.h"

#include <optional>

#include "common/rpc/status_util.h"
#include "common/rpc/tensor_codec.h"
#include "common/status/torch_status.h"

namespace rlhf::rollout {
namespace {

constexpr char kLoadWeights[] = "LoadWeights";

// One LoadWeights call. Reactions only copy chunk bytes; the swap (which waits for a
// running Generate) goes to the work pool.
class LoadWeightsReactor final : public grpc::ServerReadReactor<v1::WeightChunk> {
 public:
  LoadWeightsReactor(grpc::CallbackServerContext* context, std::shared_ptr<RolloutCore> core,
                     const server::RpcExecutor* executor, v1::LoadWeightsResponse* response)
      : context_(context),
        core_(std::move(core)),
        executor_(executor),
        response_(response),
        start_(server::RpcExecutor::Clock::now()) {
    if (grpc::Status denied = executor_->Authenticate(*context); !denied.ok()) {
      Complete(denied);
      return;
    }
    if (core_ == nullptr) {
      Complete(grpc::Status(grpc::StatusCode::UNAVAILABLE, "rollout model is still loading"));
      return;
    }
    assembler_.emplace(core_->ParameterShapes());
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      EndOfStream();
      return;
    }
    if (auto status = CatchTorchErrors(kLoadWeights, [&] { return assembler_->Add(chunk_); });
        !status.ok()) {
      Complete(rpc::ToGrpcStatus(status));
      return;
    }
    StartRead(&chunk_);
  }

  void OnDone() override { delete this; }

 private:
  void EndOfStream() {
    if (context_->IsCancelled()) {
      Complete(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled; old weights kept"));
      return;
    }
    auto weights = CatchTorchErrors(kLoadWeights, [&] { return assembler_->Finish(); });
    if (!weights.ok()) {
      Complete(rpc::ToGrpcStatus(weights.status()));
      return;
    }
    auto shared = std::make_shared<AssembledWeights>(std::move(*weights));
    const bool queued = executor_->Submit([this, shared] {
      auto version = CatchTorchErrors(kLoadWeights, [&] { return core_->SwapWeights(*shared); });
      if (!version.ok()) {
        Complete(rpc::ToGrpcStatus(version.status()));
        return;
      }
      response_->set_version(*version);
      response_->set_tensors(static_cast<int64_t>(shared->tensors.size()));
      response_->set_bytes(shared->bytes);
      auto held = rpc::WireDtype(core_->dtype());
      response_->set_dtype(held.ok() ? *held : v1::DATA_TYPE_UNSPECIFIED);
      Complete(grpc::Status::OK);
    });
    if (!queued) {
      Complete(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "rollout is busy: work queue full, weights not loaded"));
    }
  }

  void Complete(const grpc::Status& status) {
    executor_->Record(kLoadWeights, status.error_code(), start_);
    Finish(status);
  }

  grpc::CallbackServerContext* context_;
  std::shared_ptr<RolloutCore> core_;
  const server::RpcExecutor* executor_;
  v1::LoadWeightsResponse* response_;
  server::RpcExecutor::Clock::time_point start_;
  std::optional<WeightAssembler> assembler_;
  v1::WeightChunk chunk_;
};

}  // namespace

RolloutService::RolloutService(server::RpcExecutor executor) : executor_(std::move(executor)) {}

void RolloutService::SetCore(std::shared_ptr<RolloutCore> core) {
  std::lock_guard<std::mutex> lock(mutex_);
  core_ = std::move(core);
}

std::shared_ptr<RolloutCore> RolloutService::core() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return core_;
}

grpc::ServerUnaryReactor* RolloutService::Generate(grpc::CallbackServerContext* context,
                                                   const v1::GenerateRequest* request,
                                                   v1::GenerateResponse* response) {
  return executor_.Unary(context, "Generate", response, [this, context, request, response] {
    auto core = this->core();
    if (core == nullptr) return absl::UnavailableError("rollout model is still loading");
    return core->Generate(*request, response, server::RpcExecutor::AbandonedCheck(context));
  });
}

grpc::ServerReadReactor<v1::WeightChunk>* RolloutService::LoadWeights(
    grpc::CallbackServerContext* context, v1::LoadWeightsResponse* response) {
  return new LoadWeightsReactor(context, core(), &executor_, response);
}

}  // namespace rlhf::rollout
