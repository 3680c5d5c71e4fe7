#pragma once
// RewardService (rlhf.v1): translates Score calls to a Scorer on the process's work pool.
// Until SetScorer() (model still loading) calls answer UNAVAILABLE. Thread-safe.

#include <memory>
#include <mutex>

#include "common/server/rpc_executor.h"
#include "rlhf/v1/scoring.grpc.pb.h"
#include "services/reward/scorer.h"

namespace rlhf::reward {

class RewardService final : public v1::RewardService::CallbackService {
 public:
  explicit RewardService(server::RpcExecutor executor);

  void SetScorer(std::shared_ptr<Scorer> scorer);

  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;

 private:
  std::shared_ptr<Scorer> scorer() const;

  server::RpcExecutor executor_;
  mutable std::mutex mutex_;
  std::shared_ptr<Scorer> scorer_;
};

}  // namespace rlhf::reward
