#include "common/server/rpc_executor.h"

#include "absl/strings/str_cat.h"
#include "common/rpc/status_util.h"
#include "common/status/torch_status.h"

namespace rlhf::server {

RpcExecutor::RpcExecutor(std::string service, WorkPool* pool, RpcMetrics* metrics,
                         int64_t max_response_bytes, const CallerAuth* auth)
    : service_(std::move(service)),
      pool_(pool),
      metrics_(metrics),
      max_response_bytes_(max_response_bytes),
      auth_(auth) {}

grpc::Status RpcExecutor::CheckStillWanted(const grpc::ServerContextBase& context) {
  // Deadline first: gRPC also marks a call whose deadline passed as cancelled.
  if (context.deadline() <= std::chrono::system_clock::now()) {
    return {grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed before the work started"};
  }
  if (context.IsCancelled()) return {grpc::StatusCode::CANCELLED, "call cancelled by the client"};
  return grpc::Status::OK;
}

std::function<bool()> RpcExecutor::AbandonedCheck(const grpc::ServerContextBase* context) {
  return [context] { return !CheckStillWanted(*context).ok(); };
}

void RpcExecutor::Record(const std::string& method, grpc::StatusCode code,
                         Clock::time_point start) const {
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  metrics_->Record(service_, method, code, seconds);
}

grpc::ServerUnaryReactor* RpcExecutor::Unary(grpc::CallbackServerContext* context,
                                             const std::string& method,
                                             const google::protobuf::MessageLite* response,
                                             std::function<absl::Status()> work) {
  const auto start = Clock::now();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  if (grpc::Status denied = Authenticate(*context); !denied.ok()) {
    Record(method, denied.error_code(), start);
    reactor->Finish(denied);
    return reactor;
  }
  auto task = [this, context, reactor, method, response, start, work = std::move(work)] {
    grpc::Status status = CheckStillWanted(*context);
    // The catch-all edge: whatever `work` throws (bad_alloc, a torch call outside a
    // guard, a JSON library) becomes this call's status, never std::terminate.
    if (status.ok()) status = rpc::ToGrpcStatus(CatchTorchErrors(method, work));
    if (status.ok()) {
      const size_t bytes = response->ByteSizeLong();
      if (static_cast<int64_t>(bytes) > max_response_bytes_) {
        status = rpc::ToGrpcStatus(absl::ResourceExhaustedError(
            absl::StrCat(method, ": response of ", bytes, " bytes exceeds the ",
                         max_response_bytes_, "-byte message limit; send a smaller batch")));
      }
    }
    Record(method, status.error_code(), start);
    reactor->Finish(status);
  };
  if (!pool_->TrySubmit(std::move(task))) {
    Record(method, grpc::StatusCode::RESOURCE_EXHAUSTED, start);
    reactor->Finish({grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat(service_, " is busy: work queue full, retry later")});
  }
  return reactor;
}

}  // namespace rlhf::server
