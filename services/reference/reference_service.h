#pragma once
// ReferenceService (rlhf.v1): translates LogProbs calls to ReferenceCore on the process's
// work pool. Until SetCore() the model is not loaded and calls answer UNAVAILABLE (health
// is NOT_SERVING then too). Thread-safe.

#include <memory>
#include <mutex>

#include "common/server/rpc_executor.h"
#include "common/serving/reference/reference_core.h"
#include "rlhf/v1/scoring.grpc.pb.h"

namespace rlhf::reference {

class ReferenceService final : public v1::ReferenceService::CallbackService {
 public:
  explicit ReferenceService(server::RpcExecutor executor);

  void SetCore(std::shared_ptr<ReferenceCore> core);

  grpc::ServerUnaryReactor* LogProbs(grpc::CallbackServerContext* context,
                                     const v1::LogProbsRequest* request,
                                     v1::LogProbsResponse* response) override;

 private:
  std::shared_ptr<ReferenceCore> core() const;

  server::RpcExecutor executor_;
  mutable std::mutex mutex_;
  std::shared_ptr<ReferenceCore> core_;
};

}  // namespace rlhf::reference
