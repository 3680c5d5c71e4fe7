#pragma once
// ActorService (rlhf.v1): a thin translation layer over ActorCore (common/train). Unary
// calls run on the process's bounded work pool (server::RpcExecutor); ExportWeights
// snapshots the weights on the pool and streams them as WeightChunks of ~chunk_bytes
// (default 4 MiB), writes driven by the reactor. Until SetCore() calls answer UNAVAILABLE.
// Thread-safe.

#include <cstdint>
#include <memory>
#include <mutex>

#include "common/server/rpc_executor.h"
#include "common/serving/actor/actor_core.h"
#include "rlhf/v1/actor.grpc.pb.h"

namespace rlhf::actor {

inline constexpr int64_t kDefaultChunkBytes = int64_t{4} << 20;

class ActorService final : public v1::ActorService::CallbackService {
 public:
  explicit ActorService(server::RpcExecutor executor);

  void SetCore(std::shared_ptr<ActorCore> core);

  grpc::ServerUnaryReactor* Evaluate(grpc::CallbackServerContext* context,
                                     const v1::EvaluateRequest* request,
                                     v1::EvaluateResponse* response) override;
  grpc::ServerUnaryReactor* Train(grpc::CallbackServerContext* context,
                                  const v1::TrainRequest* request,
                                  v1::TrainResponse* response) override;
  grpc::ServerWriteReactor<v1::WeightChunk>* ExportWeights(
      grpc::CallbackServerContext* context, const v1::ExportWeightsRequest* request) override;
  grpc::ServerUnaryReactor* SaveCheckpoint(grpc::CallbackServerContext* context,
                                           const v1::CheckpointRequest* request,
                                           v1::CheckpointResponse* response) override;
  grpc::ServerUnaryReactor* LoadCheckpoint(grpc::CallbackServerContext* context,
                                           const v1::CheckpointRequest* request,
                                           v1::CheckpointResponse* response) override;

 private:
  std::shared_ptr<ActorCore> core() const;

  server::RpcExecutor executor_;
  mutable std::mutex mutex_;
  std::shared_ptr<ActorCore> core_;
};

}  // namespace rlhf::actor
