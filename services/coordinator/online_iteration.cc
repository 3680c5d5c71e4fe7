// JobLoop's online iteration (ppo, grpo, rloo, reinforce_pp, distill, rejection_sampling),
// stage by stage as DESIGN.md's
// "One PPO iteration": prompts -> rollout.Generate -> reference.LogProbs, reward.Score and
// actor.Evaluate in parallel -> advantages (common/algo) -> actor.Train -> weight sync ->
// metrics and the KL controller.

#include <algorithm>
#include <functional>
#include <future>

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "common/algo/advantages.h"
#include "common/algo/kl.h"
#include "common/algo/overlong_penalty.h"
#include "common/jobs/metric_names.h"
#include "common/jobs/train_config.h"
#include "common/rpc/tensor_codec.h"
#include "common/status/status_macros.h"
#include "services/coordinator/job_loop.h"

namespace rlhf::coordinator {
namespace {

absl::StatusOr<algo::KlEstimator> Estimator(const std::string& name) {
  if (name == "k1") return algo::KlEstimator::kK1;
  if (name == "k2") return algo::KlEstimator::kK2;
  if (name == "k3") return algo::KlEstimator::kK3;
  return absl::InvalidArgumentError(absl::StrCat("kl.estimator: unknown '", name, "'"));
}

algo::AdvantageEstimator EstimatorFor(const jobs::AlgorithmFacts& facts) {
  if (facts.critic) return algo::AdvantageEstimator::kGae;
  if (facts.id == jobs::JobAlgorithm::kDistill) return algo::AdvantageEstimator::kPerToken;
  switch (facts.kl) {
    case jobs::KlPlacement::kLoss:
      return algo::AdvantageEstimator::kGroup;
    case jobs::KlPlacement::kAdvantages:
      return algo::AdvantageEstimator::kLeaveOneOut;
    default:
      return algo::AdvantageEstimator::kReinforcePlusPlus;
  }
}

// The rollout's sampling log-probs against the trainer's (Evaluate's) for the same tokens
// of the same policy version: zero when both compute one distribution; a bf16 rollout,
// top-k/top-p warping or differing kernels show here (veRL's rollout-vs-actor probability
// difference). Off-policy corrections start from these numbers.
void RolloutMismatch(const torch::Tensor& trainer, const v1::GenerateResponse& generated,
                     Metrics* metrics) {
  auto sampled = rpc::TensorFromProto(generated.sampling_logprobs());
  if (!sampled.ok() || sampled->numel() != trainer.numel() || trainer.numel() == 0) return;
  const torch::Tensor rollout = sampled->to(torch::kFloat32).flatten();
  (*metrics)[metric::kRolloutLogprobAbsDiff] = (rollout - trainer).abs().mean().item<double>();
  (*metrics)[metric::kRolloutKl] =
      algo::KlPenalty(rollout, trainer, algo::KlEstimator::kK3).mean().item<double>();
}

}  // namespace

absl::Status JobLoop::OnlineIteration(int64_t iteration, Metrics* metrics) {
  const auto start = Clock::now();
  Rollout rollout;
  Judged judged;
  RLHF_RETURN_IF_ERROR(TakeRollout(iteration, &rollout, &judged, metrics));
  (*metrics)[metric::kPolicyLag] =
      static_cast<double>(policy_version_ - rollout.generated.policy_version());
  // runtime.max_policy_lag: the next batch samples from the current weights while this
  // one is judged and trained; it is awaited before the sync replaces those weights.
  if (spec_.runtime().max_policy_lag() > 0 && iteration < total_) StartPrefetch(iteration + 1);
  Metrics rollout_metrics;
  absl::Status trained = [&]() -> absl::Status {
    if (hooks_.cancelled()) return absl::CancelledError("cancelled");
    RLHF_RETURN_IF_ERROR(JudgeRollout(rollout, &judged, metrics));
    if (hooks_.cancelled()) return absl::CancelledError("cancelled");
    v1::TrainRequest train;
    if (facts_->id == jobs::JobAlgorithm::kRejectionSampling) {
      RLHF_RETURN_IF_ERROR(BuildRejectionSft(rollout, judged, &train, &rollout_metrics));
      if (!train.has_sft()) return absl::OkStatus();  // nothing kept: no step
    } else {
      RLHF_RETURN_IF_ERROR(BuildPolicyGradient(rollout, judged, &train, &rollout_metrics));
    }
    return Train(train, metrics);
  }();
  if (!trained.ok()) {
    DropPrefetch();
    return trained;
  }
  AwaitPrefetch(metrics);
  RLHF_RETURN_IF_ERROR(Sync(metrics));
  // The rollout's own numbers win over the trainer's stats of the same name (kl).
  for (const auto& [name, value] : rollout_metrics) (*metrics)[name] = value;
  if (!jobs::JobUsesReference(spec_)) metrics->erase(metric::kKl);  // nothing measured it
  const int64_t tokens = rollout.layout.tokens;
  (*metrics)[metric::kRolloutPolicyVersion] =
      static_cast<double>(rollout.generated.policy_version());
  (*metrics)[metric::kPolicyVersion] = static_cast<double>(policy_version_);
  const double seconds = Seconds(start);
  (*metrics)[metric::kTimeIterationSeconds] = seconds;
  (*metrics)[metric::kTokensPerSecond] = static_cast<double>(tokens) / std::max(seconds, 1e-9);
  return absl::OkStatus();
}

absl::Status JobLoop::SampleRollout(int64_t iteration, int64_t version, Rollout* rollout,
                                    Judged* judged, Metrics* metrics) {
  if (!spec_.generation().dynamic_sampling()) {
    return GenerateRollout(iteration, /*round=*/0, version, rollout, metrics);
  }
  judged->scored = true;
  return SampleInformativeGroups(iteration, version, rollout, &judged->scores, metrics);
}

absl::Status JobLoop::GenerateRollout(int64_t iteration, int64_t round, int64_t version,
                                      Rollout* rollout, Metrics* metrics) {
  const v1::GenerationSpec& gen = spec_.generation();
  const int64_t n = gen.samples_per_prompt();
  rollout->samples_per_prompt = n;
  rollout->examples = data_->Next(spec_.training().batch_size());
  Rows prompt_rows;
  for (const jobs::TokenizedExample* e : rollout->examples) prompt_rows.push_back(e->prompt);
  v1::GenerateRequest generate;
  rpc::TokensToProto(prompt_rows, generate.mutable_prompts());
  generate.set_samples_per_prompt(static_cast<int32_t>(n));
  v1::SamplingParams* sampling = generate.mutable_sampling();
  sampling->set_max_new_tokens(gen.max_response_tokens());
  sampling->set_temperature(static_cast<float>(gen.temperature()));
  sampling->set_top_k(gen.top_k());
  sampling->set_top_p(static_cast<float>(gen.top_p()));
  for (int64_t id : stop_ids_) sampling->add_stop_ids(id);
  generate.set_seed(static_cast<uint64_t>(spec_.runtime().seed()) * 1000000007ULL +
                    static_cast<uint64_t>(iteration) * 1000003ULL +
                    static_cast<uint64_t>(round) * 7919ULL);
  const auto start = Clock::now();
  RLHF_RETURN_IF_ERROR(WithContext(clients_.Generate(generate, &rollout->generated), "generate"));
  (*metrics)[metric::kTimeGenerateSeconds] = Seconds(start);
  // Samples count only from the policy this iteration asked for.
  if (rollout->generated.policy_version() != version) {
    return RoleVersionMismatch("rollout", rollout->generated.policy_version(), version);
  }

  auto responses = rpc::TokensFromProto(rollout->generated.completions());
  if (!responses.ok()) return WithContext(responses.status(), "generate: completions");
  rollout->responses = std::move(*responses);
  const int64_t rows = static_cast<int64_t>(rollout->responses.size());
  if (rows != static_cast<int64_t>(rollout->examples.size()) * n) {
    return absl::InternalError(absl::StrCat("generate: ", rows, " completions for ",
                                            rollout->examples.size(), " prompts x ", n));
  }
  CompleteRollout(rollout);
  return absl::OkStatus();
}

void JobLoop::CompleteRollout(Rollout* rollout) {
  rollout->layout = RaggedLayout::Of(rollout->responses);
  Rows expanded;
  for (const jobs::TokenizedExample* e : rollout->examples) {
    for (int64_t k = 0; k < rollout->samples_per_prompt; ++k) expanded.push_back(e->prompt);
  }
  rollout->sequences.Clear();
  rpc::TokensToProto(expanded, rollout->sequences.mutable_prompts());
  *rollout->sequences.mutable_responses() = rollout->generated.completions();
}

// One optimizer step (1 epoch, 1 minibatch) on samples of the current policy, no critic,
// and GRPO's group baseline with a fixed in-loss KL: the old policy is the trained one, so
// the trainer takes its own detached log-probs as the old ones (TRL GRPOTrainer with
// num_iterations=1) and nothing reads the actor's Evaluate pass but the kl metric, which
// the rollout's sampling log-probs of the same policy version give.
bool JobLoop::SkipsEvaluate(int64_t rows) const {
  // Rejection sampling trains SFT on its samples: no old log-probs are read at all.
  if (facts_->id == jobs::JobAlgorithm::kRejectionSampling) return true;
  if (facts_->critic || facts_->kl != jobs::KlPlacement::kLoss || spec_.kl().adaptive()) {
    return false;
  }
  const v1::TrainConfig config = jobs::TrainConfigForJob(spec_, rows, policy_version_);
  return std::max<int64_t>(config.epochs(), 1) == 1 &&
         std::max<int64_t>(config.num_minibatches(), 1) == 1;
}

absl::Status JobLoop::ScoreRequestFor(const Rollout& rollout, v1::ScoreRequest* request) {
  *request->mutable_batch() = rollout.sequences;
  for (int64_t row = 0; row < rollout.layout.rows(); ++row) {
    const jobs::TokenizedExample* e = rollout.examples[row / rollout.samples_per_prompt];
    // Ids past the tokenizer (padded embedding rows, e.g. Qwen2) have no text: Decode
    // skips them, as the tokenizers library does.
    auto text = tokenizer_->Decode(rollout.responses[row], /*skip_special_tokens=*/true);
    if (!text.ok()) return WithContext(text.status(), "decoding a completion");
    request->add_prompt_texts(e->prompt_text);
    request->add_response_texts(*text);
    request->add_references(e->reference);
  }
  *request->mutable_reward() = spec_.reward();  // the job's reward, on every service
  return absl::OkStatus();
}

absl::Status JobLoop::JudgeRollout(const Rollout& rollout, Judged* judged, Metrics* metrics) {
  const v1::GenerationSpec& gen = spec_.generation();
  const int64_t rows = rollout.layout.rows();
  v1::ScoreRequest score_request;
  if (!facts_->rewarded) {  // distill: the teacher's log-probs are the whole signal
    judged->scores.mutable_scores()->Resize(static_cast<int>(rows), 0.0f);
    judged->scored = true;
  }
  if (!judged->scored) RLHF_RETURN_IF_ERROR(ScoreRequestFor(rollout, &score_request));
  v1::LogProbsRequest ref_request;
  *ref_request.mutable_batch() = rollout.sequences;
  ref_request.set_temperature(static_cast<float>(gen.temperature()));
  v1::EvaluateRequest eval_request;
  *eval_request.mutable_batch() = rollout.sequences;
  eval_request.set_temperature(static_cast<float>(gen.temperature()));
  eval_request.set_values(facts_->critic);
  eval_request.set_precision(jobs::PrecisionOf(spec_));

  auto timed = [](std::function<absl::Status()> call, double* seconds) {
    const auto start = Clock::now();
    absl::Status status = call();
    *seconds = Seconds(start);
    return status;
  };
  double ref_s = 0, score_s = 0, eval_s = 0;
  const bool reference = jobs::JobUsesReference(spec_);  // no KL penalty: no reference
  auto ref_call = std::async(
      std::launch::async, timed,
      [&] {
        return reference ? clients_.LogProbs(ref_request, &judged->reference) : absl::OkStatus();
      },
      &ref_s);
  auto score_call = std::async(
      std::launch::async, timed,
      [&] {
        return judged->scored ? absl::OkStatus() : clients_.Score(score_request, &judged->scores);
      },
      &score_s);
  judged->on_policy = SkipsEvaluate(rows);
  absl::Status eval_status;
  if (judged->on_policy) {
    *judged->evaluated.mutable_logprobs() = rollout.generated.sampling_logprobs();
    judged->evaluated.set_policy_version(rollout.generated.policy_version());
  } else {
    eval_status =
        timed([&] { return clients_.Evaluate(eval_request, &judged->evaluated); }, &eval_s);
  }
  absl::Status ref_status = ref_call.get(), score_status = score_call.get();
  RLHF_RETURN_IF_ERROR(WithContext(ref_status, "reference"));
  RLHF_RETURN_IF_ERROR(WithContext(score_status, "score"));
  RLHF_RETURN_IF_ERROR(WithContext(eval_status, "evaluate"));
  (*metrics)[metric::kTimeReferenceSeconds] = ref_s;
  if (!judged->scored) (*metrics)[metric::kTimeScoreSeconds] = score_s;
  (*metrics)[metric::kTimeEvaluateSeconds] = eval_s;
  // (Without an Evaluate, `evaluated` holds the rollout's log-probs, of the version that
  // sampled: one iteration older when pipelined, which TakeRollout already bounded.)
  if (!judged->on_policy && judged->evaluated.policy_version() != policy_version_) {
    return RoleVersionMismatch("actor", judged->evaluated.policy_version(), policy_version_);
  }
  if (judged->scores.scores_size() != rows) {
    return absl::InternalError(absl::StrCat("score: ", judged->scores.scores_size(), " scores for ",
                                            rows, " completions"));
  }
  return absl::OkStatus();
}

absl::Status JobLoop::BuildPolicyGradient(const Rollout& rollout, const Judged& judged,
                                          v1::TrainRequest* train, Metrics* metrics) {
  const RaggedLayout& layout = rollout.layout;
  const int64_t rows = layout.rows();
  auto old_flat =
      FlatTensor(judged.evaluated.logprobs(), layout.tokens,
                 judged.on_policy ? "generate: sampling_logprobs" : "evaluate: logprobs");
  if (!old_flat.ok()) return old_flat.status();
  // Without a reference (no KL penalty) the KL terms are computed against the old policy
  // itself: zero, with a zero coefficient anyway; no `kl` metric is reported.
  const bool reference = jobs::JobUsesReference(spec_);
  auto ref_flat =
      reference ? FlatTensor(judged.reference.logprobs(), layout.tokens, "reference: logprobs")
                : absl::StatusOr<torch::Tensor>(*old_flat);
  if (!ref_flat.ok()) return ref_flat.status();
  algo::AdvantageInputs inputs;  // scores and has_eos are filled below
  inputs.logprobs = layout.ToGrid(*old_flat);
  inputs.ref_logprobs = layout.ToGrid(*ref_flat);
  inputs.mask = layout.Mask();
  const v1::GenerateResponse& generated = rollout.generated;
  inputs.has_eos = torch::zeros({rows}, torch::kBool);
  for (int64_t row = 0; row < rows; ++row) {
    const int reason = row < generated.finish_reasons_size() ? generated.finish_reasons(row) : 0;
    inputs.has_eos[row] = reason == v1::FINISH_REASON_EOS || reason == v1::FINISH_REASON_STOP;
  }
  const auto& score_values = judged.scores.scores();
  inputs.scores =
      torch::tensor(std::vector<float>(score_values.begin(), score_values.end()), torch::kFloat32);
  const double reward_mean = inputs.scores.mean().item<double>();
  const double reward_std = rows > 1 ? inputs.scores.std().item<double>() : 0.0;
  if (const int64_t buffer = spec_.reward().overlong_buffer_tokens(); buffer > 0) {
    auto penalty =
        algo::OverlongPenalty(inputs.mask.sum(1), spec_.generation().max_response_tokens(), buffer,
                              spec_.reward().overlong_penalty());
    if (!penalty.ok()) return WithContext(penalty.status(), "reward.overlong_buffer_tokens");
    inputs.scores = inputs.scores + penalty->to(torch::kFloat32);
    (*metrics)[metric::kOverlongPenalty] = penalty->mean().item<double>();
  }
  torch::Tensor values_flat;
  if (facts_->critic) {
    auto values = FlatTensor(judged.evaluated.values(), layout.tokens, "evaluate: values");
    if (!values.ok()) return values.status();
    values_flat = *values;
    inputs.values = layout.ToGrid(values_flat);
  }
  auto kl_estimator = Estimator(spec_.kl().estimator());
  if (!kl_estimator.ok()) return kl_estimator.status();
  const double kl_coef = kl_->value();
  algo::AdvantageOptions options{.estimator = EstimatorFor(*facts_),
                                 .kl_coef = kl_coef,
                                 .kl_estimator = *kl_estimator,
                                 .group_size = rollout.samples_per_prompt,
                                 .gamma = spec_.ppo().gamma(),
                                 .lambda = spec_.ppo().gae_lambda(),
                                 .whiten = spec_.ppo().whiten_advantages()};
  auto advantages = algo::ComputeAdvantages(inputs, options);
  if (!advantages.ok()) return WithContext(advantages.status(), "advantages");

  v1::PolicyGradientBatch* pg = train->mutable_policy_gradient();
  *pg->mutable_batch() = rollout.sequences;
  if (!judged.on_policy) SetTensor(*old_flat, pg->mutable_old_logprobs());
  SetTensor(layout.ToFlat(advantages->advantages), pg->mutable_advantages());
  if (facts_->critic) {
    SetTensor(layout.ToFlat(advantages->returns), pg->mutable_returns());
    SetTensor(values_flat, pg->mutable_old_values());
    (*metrics)[metric::kValueMean] = values_flat.mean().item<double>();
  }
  if (facts_->kl == jobs::KlPlacement::kLoss && reference) {
    SetTensor(*ref_flat, pg->mutable_ref_logprobs());
  }
  if (spec_.ppo().tis_cap() > 0) {
    auto sampled =
        FlatTensor(generated.sampling_logprobs(), layout.tokens, "generate: sampling_logprobs");
    if (!sampled.ok()) return sampled.status();
    SetTensor(*sampled, pg->mutable_rollout_logprobs());
  }
  if (!judged.on_policy) RolloutMismatch(*old_flat, rollout.generated, metrics);
  *train->mutable_config() = jobs::TrainConfigForJob(spec_, rows, policy_version_);

  const torch::Tensor sequence_kl = advantages->kl.sum(1);
  const double mean_kl = sequence_kl.mean().item<double>();
  kl_->Update(mean_kl, rows);
  if (facts_->rewarded) {
    (*metrics)[metric::kRewardMean] = reward_mean;
    (*metrics)[metric::kRewardStd] = reward_std;
  }
  if (reference) (*metrics)[metric::kKl] = mean_kl;
  (*metrics)[metric::kKlCoef] = kl_coef;
  (*metrics)[metric::kNonScoreReward] = advantages->non_score_rewards.sum(1).mean().item<double>();
  (*metrics)[metric::kResponseLength] =
      static_cast<double>(layout.tokens) / static_cast<double>(rows);
  (*metrics)[metric::kTokensGenerated] = static_cast<double>(layout.tokens);
  return absl::OkStatus();
}

}  // namespace rlhf::coordinator
