#pragma once
// RpcExecutor: how a callback-API handler runs its work. The reaction only queues the
// work on the process's bounded WorkPool (a full pool answers RESOURCE_EXHAUSTED); the
// worker skips calls whose client deadline already passed (DEADLINE_EXCEEDED) or that
// were cancelled, converts the absl::Status at the edge, refuses responses larger than
// the message limit, and records rlhf_rpc_* metrics. Every call is authenticated first.
// Thread-safe; cheap to copy.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <google/protobuf/message_lite.h>
#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "common/server/caller_auth.h"
#include "common/server/rpc_metrics.h"
#include "common/server/work_pool.h"

namespace rlhf::server {

class RpcExecutor {
 public:
  using Clock = std::chrono::steady_clock;

  // `auth` (may be null: everyone is accepted) must outlive the executor.
  RpcExecutor(std::string service, WorkPool* pool, RpcMetrics* metrics, int64_t max_response_bytes,
              const CallerAuth* auth = nullptr);

  // Runs `work` on the pool once the caller is authenticated (else UNAUTHENTICATED,
  // nothing runs) and finishes the call with its status. `response` (filled by
  // `work`) is size-checked before it is sent. An exception escaping `work` becomes the
  // call's status (common/status/torch_status.h: out of memory is RESOURCE_EXHAUSTED).
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, const std::string& method,
                                  const google::protobuf::MessageLite* response,
                                  std::function<absl::Status()> work);

  // For streaming handlers that manage their own reactor: queue work; false when full.
  bool Submit(std::function<void()> task) const { return pool_->TrySubmit(std::move(task)); }

  // UNAUTHENTICATED when the caller's token is missing or wrong; else OK. Streaming
  // handlers call it first and finish with its status when it is not OK.
  grpc::Status Authenticate(const grpc::ServerContextBase& context) const {
    return auth_ == nullptr ? grpc::Status::OK : auth_->Check(context);
  }

  // DEADLINE_EXCEEDED / CANCELLED when the call should not start work; else OK.
  static grpc::Status CheckStillWanted(const grpc::ServerContextBase& context);

  // True once nobody waits for the call any more (cancelled, or its deadline passed):
  // long work (optimizer steps, decode steps, forward chunks) polls it between steps and
  // stops. `context` must outlive the work (it does for Unary's `work`).
  static std::function<bool()> AbandonedCheck(const grpc::ServerContextBase* context);

  void Record(const std::string& method, grpc::StatusCode code, Clock::time_point start) const;

  const std::string& service() const { return service_; }
  int64_t max_response_bytes() const { return max_response_bytes_; }

 private:
  std::string service_;
  WorkPool* pool_;
  RpcMetrics* metrics_;
  int64_t max_response_bytes_;
  const CallerAuth* auth_;
};

}  // namespace rlhf::server
