#include "services/reference/reference_service.h"

namespace rlhf::reference {

ReferenceService::ReferenceService(server::RpcExecutor executor) : executor_(std::move(executor)) {}

void ReferenceService::SetCore(std::shared_ptr<ReferenceCore> core) {
  std::lock_guard<std::mutex> lock(mutex_);
  core_ = std::move(core);
}

std::shared_ptr<ReferenceCore> ReferenceService::core() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return core_;
}

grpc::ServerUnaryReactor* ReferenceService::LogProbs(grpc::CallbackServerContext* context,
                                                     const v1::LogProbsRequest* request,
                                                     v1::LogProbsResponse* response) {
  return executor_.Unary(context, "LogProbs", response, [this, context, request, response] {
    auto core = this->core();
    if (core == nullptr) return absl::UnavailableError("reference model is still loading");
    return core->LogProbs(*request, response, server::RpcExecutor::AbandonedCheck(context));
  });
}

}  // namespace rlhf::reference
