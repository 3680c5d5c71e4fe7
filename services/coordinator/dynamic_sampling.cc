// JobLoop's dynamic sampling (generation.dynamic_sampling): rounds of generate + score until
// the batch holds batch_size groups whose rewards differ (group_filter.h), then one rollout
// of the chosen groups that the rest of the iteration judges and trains on as usual.

#include <algorithm>
#include <vector>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/jobs/metric_names.h"
#include "common/rpc/tensor_codec.h"
#include "common/status/status_macros.h"
#include "services/coordinator/group_filter.h"
#include "services/coordinator/job_loop.h"

namespace rlhf::coordinator {
namespace {

std::vector<int64_t> RowOffsets(const RaggedLayout& layout) {
  std::vector<int64_t> offsets(layout.lengths.size() + 1, 0);
  for (size_t r = 0; r < layout.lengths.size(); ++r)
    offsets[r + 1] = offsets[r] + layout.lengths[r];
  return offsets;
}

}  // namespace

absl::Status JobLoop::SampleInformativeGroups(int64_t iteration, int64_t version, Rollout* rollout,
                                              v1::ScoreResponse* scores, Metrics* metrics) {
  const int64_t want = spec_.training().batch_size();
  const int64_t n = spec_.generation().samples_per_prompt();
  const int64_t max_rounds = std::max<int64_t>(1, spec_.generation().max_sampling_rounds());
  std::vector<Rollout> parts;
  std::vector<torch::Tensor> part_logprobs;
  std::vector<std::vector<int64_t>> part_offsets;
  std::vector<float> rewards;  // every sampled group's, in sampling order
  double generate_s = 0, score_s = 0;
  int64_t informative = 0;
  while (static_cast<int64_t>(parts.size()) < max_rounds && informative < want) {
    const int64_t round = static_cast<int64_t>(parts.size());
    Rollout part;
    Metrics generated;
    RLHF_RETURN_IF_ERROR(GenerateRollout(iteration, round, version, &part, &generated));
    generate_s += generated[metric::kTimeGenerateSeconds];
    v1::ScoreRequest request;
    RLHF_RETURN_IF_ERROR(ScoreRequestFor(part, &request));
    v1::ScoreResponse part_scores;
    const auto start = Clock::now();
    RLHF_RETURN_IF_ERROR(WithContext(clients_.Score(request, &part_scores), "score"));
    score_s += Seconds(start);
    if (part_scores.scores_size() != part.layout.rows()) {
      return absl::InternalError(absl::StrCat("score: ", part_scores.scores_size(), " scores for ",
                                              part.layout.rows(), " completions"));
    }
    auto logprobs = FlatTensor(part.generated.sampling_logprobs(), part.layout.tokens,
                               "generate: sampling_logprobs");
    if (!logprobs.ok()) return logprobs.status();
    const int64_t first_group = static_cast<int64_t>(rewards.size()) / n;
    rewards.insert(rewards.end(), part_scores.scores().begin(), part_scores.scores().end());
    for (int64_t g = first_group; g < static_cast<int64_t>(rewards.size()) / n; ++g) {
      informative += IsInformativeGroup(rewards, g * n, n) ? 1 : 0;
    }
    part_logprobs.push_back(*logprobs);
    part_offsets.push_back(RowOffsets(part.layout));
    parts.push_back(std::move(part));
    if (hooks_.cancelled()) return absl::CancelledError("cancelled");
  }

  // Each round sampled `want` prompts: group g is prompt g % want of round g / want.
  rollout->samples_per_prompt = n;
  rollout->generated.set_policy_version(parts.front().generated.policy_version());
  std::vector<torch::Tensor> logprobs;
  for (const int64_t g : ChooseGroups(rewards, n, want)) {
    const int64_t round = g / want, prompt = g % want;
    const Rollout& part = parts[round];
    rollout->examples.push_back(part.examples[prompt]);
    for (int64_t r = prompt * n; r < (prompt + 1) * n; ++r) {
      rollout->responses.push_back(part.responses[r]);
      rollout->generated.add_finish_reasons(r < part.generated.finish_reasons_size()
                                                ? part.generated.finish_reasons(r)
                                                : v1::FINISH_REASON_UNSPECIFIED);
      const std::vector<int64_t>& offsets = part_offsets[round];
      logprobs.push_back(part_logprobs[round].slice(0, offsets[r], offsets[r + 1]));
      scores->add_scores(rewards[round * want * n + r]);
    }
  }
  rpc::TokensToProto(rollout->responses, rollout->generated.mutable_completions());
  SetTensor(torch::cat(logprobs), rollout->generated.mutable_sampling_logprobs());
  CompleteRollout(rollout);

  const int64_t groups = static_cast<int64_t>(rewards.size()) / n;
  (*metrics)[metric::kTimeGenerateSeconds] = generate_s;
  (*metrics)[metric::kTimeScoreSeconds] = score_s;
  (*metrics)[metric::kSamplingRounds] = static_cast<double>(parts.size());
  (*metrics)[metric::kInformativeGroupFraction] =
      static_cast<double>(informative) / static_cast<double>(std::max<int64_t>(groups, 1));
  return absl::OkStatus();
}

}  // namespace rlhf::coordinator
