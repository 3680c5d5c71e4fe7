#include "services/reward/reward_service.h"

namespace rlhf::reward {

RewardService::RewardService(server::RpcExecutor executor) : executor_(std::move(executor)) {}

void RewardService::SetScorer(std::shared_ptr<Scorer> scorer) {
  std::lock_guard<std::mutex> lock(mutex_);
  scorer_ = std::move(scorer);
}

std::shared_ptr<Scorer> RewardService::scorer() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return scorer_;
}

grpc::ServerUnaryReactor* RewardService::Score(grpc::CallbackServerContext* context,
                                               const v1::ScoreRequest* request,
                                               v1::ScoreResponse* response) {
  return executor_.Unary(context, "Score", response, [this, request, response] {
    auto scorer = this->scorer();
    if (scorer == nullptr) return absl::UnavailableError("reward model is still loading");
    auto scores = scorer->Score(*request);
    if (!scores.ok()) return scores.status();
    response->mutable_scores()->Assign(scores->begin(), scores->end());
    return absl::OkStatus();
  });
}

}  // namespace rlhf::reward
