// JobLoop's rejection-sampling step (algorithm rejection_sampling): of the iteration's
// scored samples, the kept ones (rejection_filter.h) become an SFT batch of prompt +
// sampled completion for the actor.

#include <algorithm>
#include <cmath>
#include <optional>

#include "common/jobs/metric_names.h"
#include "common/jobs/train_config.h"
#include "common/rpc/tensor_codec.h"
#include "services/coordinator/job_loop.h"
#include "services/coordinator/rejection_filter.h"

namespace rlhf::coordinator {

absl::Status JobLoop::BuildRejectionSft(const Rollout& rollout, const Judged& judged,
                                        v1::TrainRequest* train, Metrics* metrics) {
  const auto& values = judged.scores.scores();
  std::vector<float> scores(values.begin(), values.end());
  const int64_t rows = rollout.layout.rows();
  const v1::RejectionSamplingSpec& rejection = spec_.rejection_sampling();
  const std::optional<double> min_score =
      rejection.has_min_score() ? std::optional<double>(rejection.min_score()) : std::nullopt;
  const std::vector<int64_t> kept =
      KeepForRejectionSampling(scores, rollout.samples_per_prompt, min_score);

  double sum = 0, sum_sq = 0, kept_sum = 0;
  for (float s : scores) {
    sum += s;
    sum_sq += static_cast<double>(s) * s;
  }
  Rows prompts, completions;
  for (int64_t row : kept) {
    prompts.push_back(rollout.examples[row / rollout.samples_per_prompt]->prompt);
    completions.push_back(rollout.responses[row]);
    kept_sum += scores[row];
  }
  const double n = static_cast<double>(std::max<int64_t>(rows, 1));
  const double mean = sum / n;
  (*metrics)[metric::kRewardMean] = mean;
  (*metrics)[metric::kRewardStd] =
      rows > 1 ? std::sqrt(std::max(0.0, (sum_sq - n * mean * mean) / (n - 1))) : 0.0;
  (*metrics)[metric::kRejectionKept] = static_cast<double>(kept.size());
  if (!kept.empty()) {
    (*metrics)[metric::kRejectionKeptRewardMean] = kept_sum / static_cast<double>(kept.size());
  }
  (*metrics)[metric::kResponseLength] = static_cast<double>(rollout.layout.tokens) / n;
  (*metrics)[metric::kTokensGenerated] = static_cast<double>(rollout.layout.tokens);
  if (kept.empty()) return absl::OkStatus();  // no SFT batch: the iteration takes no step
  rpc::TokensToProto(prompts, train->mutable_sft()->mutable_prompts());
  rpc::TokensToProto(completions, train->mutable_sft()->mutable_responses());
  *train->mutable_config() =
      jobs::TrainConfigForJob(spec_, static_cast<int64_t>(kept.size()), policy_version_);
  return absl::OkStatus();
}

}  // namespace rlhf::coordinator
