#pragma once
// RewardService (rlhf.v1): translates Score calls to a Scorer on the process's work pool.
// A request that carries the job's RewardSpec is scored as that spec says (rules are
// built from it, one cached scorer per distinct spec; kind "model" uses the server's
// model scorer, FAILED_PRECONDITION when it has none); a request without one uses the
// server's own scorer. Until SetScorer() (model still loading) calls answer UNAVAILABLE.
// Thread-safe.

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/server/rpc_executor.h"
#include "common/serving/reward/scorer.h"
#include "rlhf/v1/scoring.grpc.pb.h"

namespace rlhf::reward {

class RewardService final : public v1::RewardService::CallbackService {
 public:
  explicit RewardService(server::RpcExecutor executor);

  void SetScorer(std::shared_ptr<Scorer> scorer);

  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;

 private:
  // The scorer for `request`: its RewardSpec's, or the server's own.
  absl::StatusOr<std::shared_ptr<Scorer>> ScorerFor(const v1::ScoreRequest& request);

  // Distinct rule specs kept at once (a job sends one; a bound keeps a misbehaving
  // client from growing the map).
  static constexpr size_t kMaxCachedSpecs = 16;

  server::RpcExecutor executor_;
  std::mutex mutex_;
  std::shared_ptr<Scorer> scorer_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::shared_ptr<Scorer>> rule_scorers_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace rlhf::reward
