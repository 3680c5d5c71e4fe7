// JobLoop's offline step (sft, dpo, ipo, simpo, orpo, kto, reward_model): a dataset batch,
// the reference's summed log-probs where the loss needs them, one actor.Train call.

#include <torch/torch.h>

#include "common/algo/kto.h"
#include "common/jobs/metric_names.h"
#include "common/jobs/train_config.h"
#include "common/rpc/tensor_codec.h"
#include "common/status/status_macros.h"
#include "services/coordinator/job_loop.h"

namespace rlhf::coordinator {

absl::Status JobLoop::OfflineStep(int64_t /*iteration*/, Metrics* metrics) {
  const auto start = Clock::now();
  const std::vector<const jobs::TokenizedExample*> batch =
      data_->Next(spec_.training().batch_size());
  const int64_t rows = static_cast<int64_t>(batch.size());
  Rows prompts;
  for (const jobs::TokenizedExample* e : batch) prompts.push_back(e->prompt);
  v1::TrainRequest train;
  *train.mutable_config() = jobs::TrainConfigForJob(spec_, rows, policy_version_);
  const jobs::JobAlgorithm id = facts_->id;
  if (id == jobs::JobAlgorithm::kSft) {
    Rows completions;
    for (const jobs::TokenizedExample* e : batch) completions.push_back(e->completion);
    rpc::TokensToProto(prompts, train.mutable_sft()->mutable_prompts());
    rpc::TokensToProto(completions, train.mutable_sft()->mutable_responses());
  } else if (facts_->format == jobs::DatasetFormat::kPreference) {
    Rows chosen, rejected;
    for (const jobs::TokenizedExample* e : batch) {
      chosen.push_back(e->chosen);
      rejected.push_back(e->rejected);
    }
    v1::PreferenceBatch* pref = train.mutable_preference();
    rpc::TokensToProto(prompts, pref->mutable_chosen()->mutable_prompts());
    rpc::TokensToProto(chosen, pref->mutable_chosen()->mutable_responses());
    rpc::TokensToProto(prompts, pref->mutable_rejected()->mutable_prompts());
    rpc::TokensToProto(rejected, pref->mutable_rejected()->mutable_responses());
    if (facts_->reference_logprobs) {
      const auto stage = Clock::now();
      RLHF_RETURN_IF_ERROR(ReferenceSums(pref->chosen(), pref->mutable_ref_chosen_logprobs()));
      RLHF_RETURN_IF_ERROR(ReferenceSums(pref->rejected(), pref->mutable_ref_rejected_logprobs()));
      (*metrics)[metric::kTimeReferenceSeconds] = Seconds(stage);
    }
  } else if (id == jobs::JobAlgorithm::kKto) {
    // KL rows pair completion index[i] with prompt i (TRL _get_kl_dataset's rotation).
    Rows completions, kl_completions;
    v1::UnpairedBatch* unpaired = train.mutable_unpaired();
    for (const jobs::TokenizedExample* e : batch) {
      completions.push_back(e->completion);
      unpaired->add_desirable(e->desirable);
    }
    const torch::Tensor index = algo::KtoKlCompletionIndex(rows);
    for (int64_t i = 0; i < rows; ++i)
      kl_completions.push_back(completions[index[i].item<int64_t>()]);
    rpc::TokensToProto(prompts, unpaired->mutable_batch()->mutable_prompts());
    rpc::TokensToProto(completions, unpaired->mutable_batch()->mutable_responses());
    rpc::TokensToProto(prompts, unpaired->mutable_kl_batch()->mutable_prompts());
    rpc::TokensToProto(kl_completions, unpaired->mutable_kl_batch()->mutable_responses());
    const auto stage = Clock::now();
    RLHF_RETURN_IF_ERROR(ReferenceSums(unpaired->batch(), unpaired->mutable_ref_logprobs()));
    RLHF_RETURN_IF_ERROR(ReferenceSums(unpaired->kl_batch(), unpaired->mutable_ref_kl_logprobs()));
    (*metrics)[metric::kTimeReferenceSeconds] = Seconds(stage);
  }
  RLHF_RETURN_IF_ERROR(Train(train, metrics));
  (*metrics)[metric::kPolicyVersion] = static_cast<double>(policy_version_);
  (*metrics)[metric::kEpoch] =
      static_cast<double>(data_->cursor()) / static_cast<double>(data_->size());
  (*metrics)[metric::kTimeIterationSeconds] = Seconds(start);
  return absl::OkStatus();
}

absl::Status JobLoop::ReferenceSums(const v1::SequenceBatch& batch, v1::TensorProto* out) {
  v1::LogProbsRequest request;
  *request.mutable_batch() = batch;
  v1::LogProbsResponse response;
  RLHF_RETURN_IF_ERROR(WithContext(clients_.LogProbs(request, &response), "reference"));
  auto responses = rpc::TokensFromProto(batch.responses());
  if (!responses.ok()) return responses.status();
  const RaggedLayout layout = RaggedLayout::Of(*responses);
  auto flat = FlatTensor(response.logprobs(), layout.tokens, "reference: logprobs");
  if (!flat.ok()) return flat.status();
  SetTensor(layout.ToGrid(*flat).sum(1), out);
  return absl::OkStatus();
}

}  // namespace rlhf::coordinator
