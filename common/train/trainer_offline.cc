// PolicyTrainer's offline steps: the DPO family, SimPO, ORPO and SFT.

#include "absl/strings/str_cat.h"
#include "common/algo/dpo.h"
#include "common/algo/kto.h"
#include "common/algo/masked.h"
#include "common/algo/orpo.h"
#include "common/algo/reward_model.h"
#include "common/algo/sft.h"
#include "common/algo/simpo.h"
#include "common/jobs/metric_names.h"
#include "common/model/token_logprobs.h"
#include "common/status/torch_status.h"
#include "common/train/policy_trainer.h"
#include "common/train/train_stats.h"

namespace rlhf::train {
namespace {

absl::Status CheckSequenceLogprobs(const torch::Tensor& t, int64_t pairs, const char* what) {
  if (!t.defined() || t.numel() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(what,
                                                   " is missing (the DPO family needs "
                                                   "reference logprobs)"));
  }
  if (t.dim() != 1 || t.size(0) != pairs || !t.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be a floating-point [", pairs,
                                                   "] tensor (one summed logprob per pair), got ",
                                                   t.numel(), " elements"));
  }
  return absl::OkStatus();
}

// `first`'s rows followed by `second`'s: one padded batch, one forward per minibatch.
SequenceBatch Stack(const SequenceBatch& first, const SequenceBatch& second) {
  SequenceBatch both = first;
  both.prompts.insert(both.prompts.end(), second.prompts.begin(), second.prompts.end());
  both.responses.insert(both.responses.end(), second.responses.begin(), second.responses.end());
  return both;
}

// Rows `part` of the first half of a Stack, then the same rows of the second half.
std::vector<int64_t> WithPartnerRows(const std::vector<int64_t>& part, int64_t offset) {
  std::vector<int64_t> rows = part;
  for (int64_t r : part) rows.push_back(r + offset);
  return rows;
}

}  // namespace

absl::StatusOr<TrainStats> PolicyTrainer::TrainPreference(const PreferenceInputs& inputs,
                                                          const AlgorithmConfig& config) {
  if (BatchKindOf(config.algorithm) != BatchKind::kPreference) {
    return absl::InvalidArgumentError(absl::StrCat("algorithm \"", config.algorithm_name,
                                                   "\" does not train on a preference batch"));
  }
  if (auto s = BeginStep(config); !s.ok()) return s;
  if (config.algorithm == Algorithm::kRewardModel) {
    if (classifier_ == nullptr) {
      return absl::FailedPreconditionError(
          "algorithm \"reward_model\" needs a reward-model trainer (a sequence-classification "
          "model), this trainer holds a policy");
    }
    return CatchTorchErrors("TrainRewardModel",
                            [&] { return TrainRewardModelImpl(inputs, config); });
  }
  if (auto s = RequirePolicy("TrainPreference"); !s.ok()) return s;
  return CatchTorchErrors("TrainPreference", [&] { return TrainPreferenceImpl(inputs, config); });
}

// Bradley-Terry: score(prompt + chosen) vs score(prompt + rejected), TRL RewardTrainer.
absl::StatusOr<TrainStats> PolicyTrainer::TrainRewardModelImpl(const PreferenceInputs& inputs,
                                                               const AlgorithmConfig& config) {
  const int64_t pairs = inputs.chosen.size();
  if (pairs != inputs.rejected.size()) {
    return absl::InvalidArgumentError(absl::StrCat("preference batch has ", pairs, " chosen but ",
                                                   inputs.rejected.size(), " rejected sequences"));
  }
  const SequenceBatch both = Stack(inputs.chosen, inputs.rejected);
  auto padded = BuildPaddedBatch(both, classifier_->config().vocab_size, options_.pad_token_id);
  if (!padded.ok()) return padded.status();
  const torch::Device device = classifier_->device();
  return RunMinibatches(
      ShapesOf(*padded, pairs, 2), config,
      [&](const MicroBatch& micro, StatsAccumulator& stats) -> absl::StatusOr<torch::Tensor> {
        const std::vector<int64_t>& pair_rows = micro.rows;
        const int64_t b = static_cast<int64_t>(pair_rows.size());
        PaddedBatch mb = SelectRows(*padded, WithPartnerRows(pair_rows, pairs));
        const torch::Tensor scores =
            classifier_->ScoreUnchecked(mb.input_ids.to(device), mb.attention_mask.to(device))
                .select(1, 0)
                .to(torch::kFloat32);
        auto result = algo::RewardModelLoss(scores.slice(0, 0, b), scores.slice(0, b));
        if (!result.ok()) return result.status();
        stats.Add(metric::kRewardAccuracy, result->accuracy);
        stats.Add(metric::kRewardMargin, result->margin);
        stats.Add(metric::kChosenRewards, result->chosen_mean);
        stats.Add(metric::kRejectedRewards, result->rejected_mean);
        return result->loss * micro.row_share;  // a mean over pairs
      });
}

absl::StatusOr<TrainStats> PolicyTrainer::TrainPreferenceImpl(const PreferenceInputs& inputs,
                                                              const AlgorithmConfig& config) {
  const int64_t pairs = inputs.chosen.size();
  if (pairs != inputs.rejected.size()) {
    return absl::InvalidArgumentError(absl::StrCat("preference batch has ", pairs, " chosen but ",
                                                   inputs.rejected.size(), " rejected sequences"));
  }
  const bool dpo = config.algorithm == Algorithm::kDpo;
  torch::Tensor ref_chosen, ref_rejected;
  if (dpo) {
    if (config.reference_free) {
      ref_chosen = torch::zeros({pairs});
      ref_rejected = torch::zeros({pairs});
    } else {
      if (auto s = CheckSequenceLogprobs(inputs.ref_chosen_logprobs, pairs, "ref_chosen_logprobs");
          !s.ok()) {
        return s;
      }
      if (auto s =
              CheckSequenceLogprobs(inputs.ref_rejected_logprobs, pairs, "ref_rejected_logprobs");
          !s.ok()) {
        return s;
      }
      ref_chosen = inputs.ref_chosen_logprobs.to(torch::kFloat32);
      ref_rejected = inputs.ref_rejected_logprobs.to(torch::kFloat32);
    }
  }
  // Chosen rows first, then rejected: one forward per minibatch covers both.
  const SequenceBatch both = Stack(inputs.chosen, inputs.rejected);
  auto padded = BuildPaddedBatch(both, model_->config().vocab_size, options_.pad_token_id);
  if (!padded.ok()) return padded.status();
  const torch::Device device = model_->device();
  return RunMinibatches(
      ShapesOf(*padded, pairs, 2), config,
      [&](const MicroBatch& micro, StatsAccumulator& stats) -> absl::StatusOr<torch::Tensor> {
        const std::vector<int64_t>& pair_rows = micro.rows;
        const int64_t b = pair_rows.size();
        PaddedBatch mb = SelectRows(*padded, WithPartnerRows(pair_rows, pairs));
        auto out = Forward(mb, config.temperature, /*entropy=*/false);
        if (!out.ok()) return out.status();
        const torch::Tensor mask = mb.response_mask.to(device);
        const torch::Tensor sums = algo::MaskedRowSum(out->logprobs, mask);
        const torch::Tensor lengths = mask.sum(1);
        const torch::Tensor averages = sums / lengths.clamp_min(1);
        torch::Tensor loss, accuracy, margin, chosen_rewards, rejected_rewards;
        if (dpo) {
          const torch::Tensor index = torch::tensor(pair_rows, torch::kInt64);
          algo::DpoInputs dpo_inputs{
              .policy_chosen_logps = sums.slice(0, 0, b),
              .policy_rejected_logps = sums.slice(0, b),
              .ref_chosen_logps = ref_chosen.index_select(0, index).to(device),
              .ref_rejected_logps = ref_rejected.index_select(0, index).to(device)};
          if (config.dpo_loss_type == algo::DpoLossType::kIpo) {
            dpo_inputs.chosen_lengths = lengths.slice(0, 0, b);
            dpo_inputs.rejected_lengths = lengths.slice(0, b);
          }
          algo::DpoOptions dpo_options{.loss_type = config.dpo_loss_type,
                                       .beta = config.beta,
                                       .label_smoothing = config.label_smoothing,
                                       .reference_free = config.reference_free};
          auto result = algo::DpoLoss(dpo_inputs, dpo_options);
          if (!result.ok()) return result.status();
          loss = result->loss * micro.row_share;  // a mean over pairs
          accuracy = result->reward_accuracy;
          margin = result->reward_margin;
          chosen_rewards = result->chosen_rewards.mean();
          rejected_rewards = result->rejected_rewards.mean();
        } else if (config.algorithm == Algorithm::kSimpo) {
          algo::CpoOptions simpo_options;
          simpo_options.beta = config.beta;
          simpo_options.simpo_gamma = config.simpo_gamma;
          simpo_options.label_smoothing = config.label_smoothing;
          auto result = algo::SimpoLoss(
              {.chosen_logps = averages.slice(0, 0, b), .rejected_logps = averages.slice(0, b)},
              simpo_options);
          if (!result.ok()) return result.status();
          loss = result->loss * micro.row_share;  // a mean over pairs
          accuracy = result->reward_accuracy;
          margin = result->reward_margin;
          chosen_rewards = result->chosen_rewards.mean();
          rejected_rewards = result->rejected_rewards.mean();
        } else {  // ORPO: chosen NLL as a token mean over the chosen responses.
          const torch::Tensor chosen_nll =
              -sums.slice(0, 0, b).sum() / lengths.slice(0, 0, b).sum().clamp_min(1);
          auto result = algo::OrpoLoss({.chosen_logps = averages.slice(0, 0, b),
                                        .rejected_logps = averages.slice(0, b),
                                        .chosen_nll = chosen_nll},
                                       {.beta = config.beta});
          if (!result.ok()) return result.status();
          // A token mean over the chosen responses plus a mean over pairs.
          loss = chosen_nll * micro.token_share + result->or_loss * micro.row_share;
          chosen_rewards = result->chosen_rewards.mean();
          rejected_rewards = result->rejected_rewards.mean();
          accuracy = (result->chosen_rewards > result->rejected_rewards).to(torch::kFloat).mean();
          margin = (result->chosen_rewards - result->rejected_rewards).mean();
          stats.Add(metric::kNllLoss, chosen_nll);
          stats.Add(metric::kLogOddsRatio, result->log_odds_ratio);
        }
        stats.Add(metric::kRewardAccuracy, accuracy);
        stats.Add(metric::kRewardMargin, margin);
        stats.Add(metric::kChosenRewards, chosen_rewards);
        stats.Add(metric::kRejectedRewards, rejected_rewards);
        return loss;
      });
}

absl::StatusOr<TrainStats> PolicyTrainer::TrainKto(const UnpairedInputs& inputs,
                                                   const AlgorithmConfig& config) {
  if (config.algorithm != Algorithm::kKto) {
    return absl::InvalidArgumentError(absl::StrCat("algorithm \"", config.algorithm_name,
                                                   "\" does not train on an unpaired batch"));
  }
  if (auto s = RequirePolicy("TrainKto"); !s.ok()) return s;
  if (auto s = BeginStep(config); !s.ok()) return s;
  return CatchTorchErrors("TrainKto", [&] { return TrainKtoImpl(inputs, config); });
}

absl::StatusOr<TrainStats> PolicyTrainer::TrainKtoImpl(const UnpairedInputs& inputs,
                                                       const AlgorithmConfig& config) {
  const int64_t rows = inputs.batch.size();
  if (inputs.kl_batch.size() != rows || static_cast<int64_t>(inputs.desirable.size()) != rows) {
    return absl::InvalidArgumentError(absl::StrCat("unpaired batch: ", rows, " rows but ",
                                                   inputs.kl_batch.size(), " KL rows and ",
                                                   inputs.desirable.size(), " labels"));
  }
  if (auto s = CheckSequenceLogprobs(inputs.ref_logprobs, rows, "ref_logprobs"); !s.ok()) return s;
  if (auto s = CheckSequenceLogprobs(inputs.ref_kl_logprobs, rows, "ref_kl_logprobs"); !s.ok()) {
    return s;
  }
  const SequenceBatch both = Stack(inputs.batch, inputs.kl_batch);  // rows, then their KL rows
  auto padded = BuildPaddedBatch(both, model_->config().vocab_size, options_.pad_token_id);
  if (!padded.ok()) return padded.status();
  const torch::Device device = model_->device();
  const torch::Tensor ref = inputs.ref_logprobs.to(torch::kFloat32);
  const torch::Tensor ref_kl = inputs.ref_kl_logprobs.to(torch::kFloat32);
  std::vector<uint8_t> labels(inputs.desirable.begin(), inputs.desirable.end());
  const torch::Tensor desirable =
      torch::tensor(std::vector<int64_t>(labels.begin(), labels.end())).to(torch::kBool);
  // KTO's reference point is a mean over the minibatch's KL rows: a micro-batch of part
  // of it takes the point from a no-grad pass over all of them (computed once).
  std::vector<int64_t> kl_point_rows;
  torch::Tensor kl_point_logps;
  auto minibatch_kl_logps = [&](const MicroBatch& micro) -> absl::StatusOr<torch::Tensor> {
    if (kl_point_rows == micro.minibatch_rows) return kl_point_logps;
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> sums;
    for (const MicroBatch& part : SplitMicroBatches(micro.minibatch_rows, ShapesOf(*padded, rows),
                                                    config.max_tokens_per_microbatch)) {
      std::vector<int64_t> kl_rows;
      for (int64_t r : part.rows) kl_rows.push_back(r + rows);
      PaddedBatch kl = SelectRows(*padded, kl_rows);
      auto out = Forward(kl, config.temperature, /*entropy=*/false);
      if (!out.ok()) return out.status();
      sums.push_back(algo::MaskedRowSum(out->logprobs, kl.response_mask.to(device)));
    }
    kl_point_rows = micro.minibatch_rows;
    kl_point_logps = torch::cat(sums).to(torch::kFloat32);
    return kl_point_logps;
  };
  return RunMinibatches(
      ShapesOf(*padded, rows, 2), config,
      [&](const MicroBatch& micro, StatsAccumulator& stats) -> absl::StatusOr<torch::Tensor> {
        const std::vector<int64_t>& part = micro.rows;
        const int64_t b = static_cast<int64_t>(part.size());
        // The whole minibatch: its KL rows ride along in the same forward.
        PaddedBatch mb = SelectRows(*padded, micro.whole() ? WithPartnerRows(part, rows) : part);
        auto out = Forward(mb, config.temperature, /*entropy=*/false);
        if (!out.ok()) return out.status();
        const torch::Tensor sums = algo::MaskedRowSum(out->logprobs, mb.response_mask.to(device));
        const torch::Tensor index = torch::tensor(part, torch::kInt64);
        torch::Tensor policy_kl = micro.whole() ? sums.slice(0, b).detach() : torch::Tensor();
        torch::Tensor kl_index = index;
        if (!micro.whole()) {
          auto kl = minibatch_kl_logps(micro);
          if (!kl.ok()) return kl.status();
          policy_kl = *kl;
          kl_index = torch::tensor(micro.minibatch_rows, torch::kInt64);
        }
        algo::KtoInputs kto{.policy_logps = sums.slice(0, 0, b).to(torch::kFloat32),
                            .ref_logps = ref.index_select(0, index).to(device),
                            .desirable = desirable.index_select(0, index).to(device),
                            .policy_kl_logps = policy_kl.to(torch::kFloat32),
                            .ref_kl_logps = ref_kl.index_select(0, kl_index).to(device)};
        auto result = algo::KtoLoss(kto, {.beta = config.beta,
                                          .desirable_weight = config.kto_desirable_weight,
                                          .undesirable_weight = config.kto_undesirable_weight});
        if (!result.ok()) return result.status();
        stats.Add(metric::kKl, result->kl);
        stats.Add(metric::kChosenRewards, result->chosen_reward_mean);
        stats.Add(metric::kRejectedRewards, result->rejected_reward_mean);
        return result->loss * micro.row_share;  // a mean over rows
      });
}

absl::StatusOr<TrainStats> PolicyTrainer::TrainSft(const SequenceBatch& batch,
                                                   const AlgorithmConfig& config) {
  if (config.algorithm != Algorithm::kSft) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm \"", config.algorithm_name, "\" does not train on an SFT batch"));
  }
  if (auto s = RequirePolicy("TrainSft"); !s.ok()) return s;
  if (auto s = BeginStep(config); !s.ok()) return s;
  return CatchTorchErrors("TrainSft", [&] { return TrainSftImpl(batch, config); });
}

absl::StatusOr<TrainStats> PolicyTrainer::TrainSftImpl(const SequenceBatch& batch,
                                                       const AlgorithmConfig& config) {
  auto padded = BuildPaddedBatch(batch, model_->config().vocab_size, options_.pad_token_id);
  if (!padded.ok()) return padded.status();
  const torch::Device device = model_->device();
  return RunMinibatches(
      ShapesOf(*padded, batch.size()), config,
      [&](const MicroBatch& micro, StatsAccumulator& stats) -> absl::StatusOr<torch::Tensor> {
        PaddedBatch mb = SelectRows(*padded, micro.rows);
        auto out = Forward(mb, config.temperature, /*entropy=*/false);
        if (!out.ok()) return out.status();
        auto loss = algo::SftLossFromLogprobs(out->logprobs, mb.response_mask.to(device));
        if (!loss.ok()) return loss.status();
        stats.AddCount(metric::kNumTokens, loss->num_tokens);
        return loss->loss * micro.token_share;  // a token mean
      });
}

}  // namespace rlhf::train
