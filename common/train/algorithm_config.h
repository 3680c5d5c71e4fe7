#pragma once

// The algorithm and the hyperparameters a training step needs. The actor builds it from
// the typed rlhf.v1.TrainConfig of each Train call (services/actor/train_config_proto.h);
// tests build it with AlgorithmConfigFor(name) and set fields.
//
// algorithm: ppo | grpo | rloo | reinforce_pp (policy-gradient batches);
//            dpo | ipo | cdpo | robust_dpo | hinge | simpo | orpo (preference batches);
//            sft (SFT batches); reward_model (preference batches, classifier trainer);
//            kto (unpaired batches).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/algo/dpo.h"
#include "common/algo/grpo.h"
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

struct OptimizerOptions {
  // torch.optim.AdamW; weight_decay defaults to transformers' TrainingArguments 0.0.
  double learning_rate = 1e-5;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;  // global L2 norm; <= 0: no clipping (norm still reported)
};

// InvalidArgument naming the first field out of range (lr >= 0, eps > 0, betas in [0, 1),
// weight_decay >= 0, all finite).
absl::Status ValidateOptimizerOptions(const OptimizerOptions& options);

// The policy's compute precision (rlhf.v1.Precision).
enum class Precision { kFp32, kBf16Mixed };

struct AlgorithmConfig {
  Algorithm algorithm = Algorithm::kPpo;
  std::string algorithm_name = "ppo";  // as given

  // Passes over the batch and optimizer steps per pass (rows split evenly).
  int64_t ppo_epochs = 1;
  int64_t num_minibatches = 1;
  double temperature = 1.0;  // logits / temperature (match the rollout)
  // Every optimizer setting of this step; unset: the trainer's own (TrainerOptions).
  std::optional<OptimizerOptions> optimizer;
  // How the step runs, not what it computes (the same step up to rounding; bf16 within
  // its precision): padded tokens per forward/backward (0: the whole minibatch), layer
  // recomputation in backward, and the forward's precision.
  int64_t max_tokens_per_microbatch = 0;
  bool gradient_checkpointing = false;
  Precision precision = Precision::kFp32;

  // Policy gradient (PPO clipped surrogate for every PG algorithm).
  double clip_eps_low = 0.2;
  double clip_eps_high = 0.2;  // DAPO clip-higher when above clip_eps_low
  std::optional<double> dual_clip;
  algo::LossAggregation aggregation = algo::LossAggregation::kTokenMean;
  double vf_coef = 0.1;                    // PPO with a value head and returns
  std::optional<double> value_clip = 0.2;  // nullopt: unclipped
  double entropy_coef = 0.0;
  double kl_coef = 0.0;  // in-loss k3 KL to ref_logprobs (GRPO beta)
  // GRPO only: a ratio per token or per sequence (GSPO), and the clipped surrogate or
  // CISPO (clip_eps_high is then the cap on the importance weight itself).
  algo::ImportanceSampling importance_sampling = algo::ImportanceSampling::kToken;
  algo::PolicyLossKind policy_loss = algo::PolicyLossKind::kClip;
  // Truncated importance sampling: each token's policy loss times min(exp(old_logprobs -
  // rollout_logprobs), tis_cap); 0 = off (then rollout_logprobs are not needed).
  double tis_cap = 0.0;

  // Preference.
  algo::DpoLossType dpo_loss_type = algo::DpoLossType::kSigmoid;
  double beta = 0.1;  // DPO beta / SimPO beta / ORPO lambda
  double label_smoothing = 0.0;
  bool reference_free = false;
  double simpo_gamma = 0.5;
  double kto_desirable_weight = 1.0;    // KTO lambda_D
  double kto_undesirable_weight = 1.0;  // KTO lambda_U
};

// The defaults of algorithm `name` (cdpo: label_smoothing 0.1; simpo: beta 2.0; ipo,
// robust_dpo, hinge: their dpo_loss_type). InvalidArgument listing the known names.
absl::StatusOr<AlgorithmConfig> AlgorithmConfigFor(std::string_view name);

// InvalidArgument naming the first field out of range: epochs/minibatches < 1,
// temperature <= 0, negative clip ranges, beta <= 0 where the loss divides by it,
// label_smoothing outside [0, 0.5), KTO weights <= 0, a bad optimizer.
absl::Status ValidateAlgorithmConfig(const AlgorithmConfig& config);

}  // namespace rlhf::train
