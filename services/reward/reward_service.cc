#include "services/reward/reward_service.h"

#include "absl/strings/str_cat.h"

namespace rlhf::reward {

RewardService::RewardService(server::RpcExecutor executor) : executor_(std::move(executor)) {}

void RewardService::SetScorer(std::shared_ptr<Scorer> scorer) {
  std::lock_guard<std::mutex> lock(mutex_);
  scorer_ = std::move(scorer);
}

absl::StatusOr<std::shared_ptr<Scorer>> RewardService::ScorerFor(const v1::ScoreRequest& request) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (scorer_ == nullptr) return absl::UnavailableError("reward model is still loading");
  if (!request.has_reward()) return scorer_;
  const v1::RewardSpec& spec = request.reward();
  if (spec.kind() == "model" || spec.kind().empty()) {
    if (scorer_->name() != "model") {
      return absl::FailedPreconditionError(
          absl::StrCat("the job asks for reward.kind \"model\" but this reward server scores with ",
                       scorer_->name(), "; start rlhf-reward with --model"));
    }
    return scorer_;
  }
  const std::string key = spec.SerializeAsString();
  if (auto it = rule_scorers_.find(key); it != rule_scorers_.end()) return it->second;
  auto made = MakeScorer(spec, /*model_dir=*/"");
  if (!made.ok()) return made.status();
  if (rule_scorers_.size() >= kMaxCachedSpecs) rule_scorers_.clear();
  std::shared_ptr<Scorer> scorer = std::move(*made);
  rule_scorers_.emplace(key, scorer);
  return scorer;
}

grpc::ServerUnaryReactor* RewardService::Score(grpc::CallbackServerContext* context,
                                               const v1::ScoreRequest* request,
                                               v1::ScoreResponse* response) {
  return executor_.Unary(context, "Score", response, [this, request, response] {
    auto scorer = ScorerFor(*request);
    if (!scorer.ok()) return scorer.status();
    auto scores = (*scorer)->Score(*request);
    if (!scores.ok()) return scores.status();
    response->mutable_scores()->Assign(scores->begin(), scores->end());
    return absl::OkStatus();
  });
}

}  // namespace rlhf::reward
