#pragma once
// RolloutService (rlhf.v1): Generate runs on the process's work pool; LoadWeights reads
// the client stream in reactions (a memcpy per chunk into WeightAssembler, which validates
// as it goes), then swaps the weights in on the pool. A bad stream finishes with
// INVALID_ARGUMENT naming the tensor and leaves the old weights serving. Until SetCore()
// calls answer UNAVAILABLE. Thread-safe.

#include <memory>
#include <mutex>

#include "common/server/rpc_executor.h"
#include "common/serving/rollout/rollout_core.h"
#include "rlhf/v1/rollout.grpc.pb.h"

namespace rlhf::rollout {

class RolloutService final : public v1::RolloutService::CallbackService {
 public:
  explicit RolloutService(server::RpcExecutor executor);

  void SetCore(std::shared_ptr<RolloutCore> core);

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const v1::GenerateRequest* request,
                                     v1::GenerateResponse* response) override;

  grpc::ServerReadReactor<v1::WeightChunk>* LoadWeights(grpc::CallbackServerContext* context,
                                                        v1::LoadWeightsResponse* response) override;

 private:
  std::shared_ptr<RolloutCore> core() const;

  server::RpcExecutor executor_;
  mutable std::mutex mutex_;
  std::shared_ptr<RolloutCore> core_;
};

}  // namespace rlhf::rollout
