#pragma once

// The algorithm and the hyperparameters a training step needs, parsed from the job spec's
// JSON (TrainRequest.algorithm_config_json). Keys are read from the top level; keys this
// trainer does not use are ignored (the coordinator validates the full spec).
//
//   {"algorithm": "ppo", "ppo_epochs": 4, "num_minibatches": 2, "clip_eps": 0.2,
//    "vf_coef": 0.1, "value_clip": 0.2, "entropy_coef": 0.0, "temperature": 1.0}
//   {"algorithm": "dpo", "loss_type": "sigmoid", "beta": 0.1, "label_smoothing": 0.0}
//
// algorithm: ppo | grpo | rloo | reinforce_pp (policy-gradient batches);
//            dpo | ipo | cdpo | robust_dpo | hinge | simpo | orpo (preference batches);
//            sft (SFT batches); reward_model (preference batches, classifier trainer).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/algo/dpo.h"
#include "common/algo/masked.h"

namespace rlhf::train {

enum class Algorithm {
  kPpo,
  kGrpo,
  kRloo,
  kReinforcePlusPlus,  // policy gradient
  kDpo,
  kSimpo,
  kOrpo,  // preference (DPO family by dpo_loss_type)
  kSft,
  kRewardModel,  // Bradley-Terry on preference batches (a sequence-classification model)
  kKto,          // unpaired batches
};

enum class BatchKind { kPolicyGradient, kPreference, kSft, kUnpaired };
BatchKind BatchKindOf(Algorithm algorithm);
std::string_view AlgorithmName(Algorithm algorithm);

struct AlgorithmConfig {
  Algorithm algorithm = Algorithm::kPpo;
  std::string algorithm_name = "ppo";  // as given

  // Passes over the batch and optimizer steps per pass (rows split evenly).
  int64_t ppo_epochs = 1;
  int64_t num_minibatches = 1;
  double temperature = 1.0;             // logits / temperature (match the rollout)
  std::optional<double> learning_rate;  // overrides the optimizer's lr when set
  std::optional<double> max_grad_norm;  // overrides the trainer's when set

  // Policy gradient (PPO clipped surrogate for every PG algorithm).
  double clip_eps_low = 0.2;  // "clip_eps" sets both, "clip_eps_high" DAPO
  double clip_eps_high = 0.2;
  std::optional<double> dual_clip;
  algo::LossAggregation aggregation = algo::LossAggregation::kTokenMean;  // "loss_aggregation"
  double vf_coef = 0.1;                    // PPO with a value head and returns
  std::optional<double> value_clip = 0.2;  // null: unclipped
  double entropy_coef = 0.0;
  double kl_coef = 0.0;  // in-loss k3 KL to ref_logprobs (GRPO beta)

  // Preference.
  algo::DpoLossType dpo_loss_type = algo::DpoLossType::kSigmoid;
  double beta = 0.1;  // DPO beta / SimPO beta / ORPO lambda
  double label_smoothing = 0.0;
  bool reference_free = false;
  double simpo_gamma = 0.5;
  double kto_desirable_weight = 1.0;    // KTO lambda_D ("desirable_weight")
  double kto_undesirable_weight = 1.0;  // KTO lambda_U ("undesirable_weight")
};

// InvalidArgument naming the key: not JSON / not an object, missing or unknown algorithm,
// wrong type, out-of-range value (epochs/minibatches < 1, temperature <= 0, ...).
absl::StatusOr<AlgorithmConfig> ParseAlgorithmConfig(std::string_view json);

}  // namespace rlhf::train
