#pragma once

// PolicyTrainer: the trainable policy (+ TRL value head for PPO), its AdamW optimizer and
// the training steps of every algorithm, independent of any transport. The actor service
// and `rlhf local` both drive it.
//
// Per-token tensors in and out are flat float32 [N], aligned with the concatenated
// response ids of the SequenceBatch (the wire layout of rlhf.v1.EvaluateResponse).
// policy_version starts at 0 and grows by one per optimizer step.
//
// Not thread-safe: callers serialise calls (the actor service holds a mutex).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/model/causal_lm.h"
#include "common/model/sequence_classifier.h"
#include "common/model/token_logprobs.h"
#include "common/train/algorithm_config.h"
#include "common/train/gradient_all_reducer.h"
#include "common/train/micro_batches.h"
#include "common/train/padded_batch.h"
#include "common/train/train_stats.h"

namespace rlhf::train {

class DataParallelGroup;

struct TrainerOptions {
  OptimizerOptions optimizer;
  int64_t chunk_tokens = 512;  // TokenLogprobsOptions::chunk_tokens
  int64_t pad_token_id = 0;    // padding id (masked out; any valid id works)
  // Tokenizer files copied into checkpoints (the model's source directory).
  std::optional<std::filesystem::path> tokenizer_dir;
  // Where Load/LoadRewardModel put the model (float32 master weights on any device).
  torch::Device device = torch::kCPU;
};

struct EvaluateResult {
  torch::Tensor logprobs;  // [N] float32
  torch::Tensor entropy;   // [N] float32
  torch::Tensor values;    // [N] float32; undefined unless requested (needs a value head)
  int64_t policy_version = 0;
};

struct PolicyGradientInputs {
  SequenceBatch batch;
  torch::Tensor old_logprobs;           // [N]; undefined: one on-policy step (TrainPolicyGradient)
  torch::Tensor advantages;             // [N]
  torch::Tensor returns = {};           // [N] PPO critic; undefined: no value loss
  torch::Tensor old_values = {};        // [N] PPO critic (value clipping)
  torch::Tensor ref_logprobs = {};      // [N] in-loss KL (kl_coef > 0)
  torch::Tensor rollout_logprobs = {};  // [N] the rollout's sampling log-probs (tis_cap > 0)
};

struct PreferenceInputs {
  SequenceBatch chosen, rejected;                            // pairs: same prompt count
  torch::Tensor ref_chosen_logprobs, ref_rejected_logprobs;  // [B] summed; DPO family only
};

struct UnpairedInputs {
  SequenceBatch batch;            // prompt + completion rows
  std::vector<bool> desirable;    // one label per row
  torch::Tensor ref_logprobs;     // [B] summed over response tokens
  SequenceBatch kl_batch;         // mismatched pairs, same row count
  torch::Tensor ref_kl_logprobs;  // [B]
};

using TrainStats = std::map<std::string, double>;

class PolicyTrainer {
 public:
  // A trainer of a reward model (*ForSequenceClassification, score at the last real token)
  // instead of a policy: only TrainPreference with algorithm reward_model, checkpoints and
  // NamedWeights apply; the policy steps answer FailedPrecondition.
  static absl::StatusOr<std::unique_ptr<PolicyTrainer>> CreateRewardModel(
      std::shared_ptr<model::SequenceClassifier> model, TrainerOptions options,
      std::shared_ptr<GradientAllReducer> all_reducer = nullptr);
  // LoadSequenceClassifier(dir) (a causal-LM checkpoint gets a fresh score head), then
  // CreateRewardModel.
  static absl::StatusOr<std::unique_ptr<PolicyTrainer>> LoadRewardModel(
      const std::filesystem::path& dir, TrainerOptions options,
      std::shared_ptr<GradientAllReducer> all_reducer = nullptr);

  // Takes `model` (with a value head for PPO) and builds AdamW over all its parameters.
  static absl::StatusOr<std::unique_ptr<PolicyTrainer>> Create(
      std::shared_ptr<model::CausalLm> model, TrainerOptions options,
      std::shared_ptr<GradientAllReducer> all_reducer = nullptr);

  // LoadCausalLm(dir) (+ value head) then Create; tokenizer_dir defaults to `dir`.
  static absl::StatusOr<std::unique_ptr<PolicyTrainer>> Load(
      const std::filesystem::path& dir, bool value_head, TrainerOptions options,
      std::shared_ptr<GradientAllReducer> all_reducer = nullptr);

  // Per-response-token logprobs and entropy (and values) at `temperature`, no autograd,
  // in `precision` (as the training forward runs, so a first step's ratio is 1).
  absl::StatusOr<EvaluateResult> Evaluate(const SequenceBatch& batch, double temperature = 1.0,
                                          bool values = false,
                                          Precision precision = Precision::kFp32);

  // PPO clipped surrogate (+ clipped value loss when returns are given and the model has a
  // value head, + entropy bonus, + k3 KL to ref_logprobs when kl_coef > 0), ppo_epochs x
  // num_minibatches optimizer steps. Stats are means over steps: loss, policy_loss,
  // value_loss, entropy, clip_fraction, value_clip_fraction, approx_kl, kl, grad_norm, steps.
  absl::StatusOr<TrainStats> TrainPolicyGradient(const PolicyGradientInputs& inputs,
                                                 const AlgorithmConfig& config);

  // DPO family (with reference logprobs), SimPO or ORPO (reference-free), or the
  // Bradley-Terry reward-model loss (a reward-model trainer), num_minibatches optimizer steps.
  // Stats: loss, reward_accuracy, reward_margin, chosen_rewards, rejected_rewards, grad_norm,
  // steps.
  absl::StatusOr<TrainStats> TrainPreference(const PreferenceInputs& inputs,
                                             const AlgorithmConfig& config);

  // KTO (TRL KTOTrainer, loss_type "kto"): summed response logprobs of `batch` and of the
  // mismatched `kl_batch` against the reference's. Stats: loss, kl (the reference point),
  // chosen_rewards, rejected_rewards, grad_norm, steps.
  absl::StatusOr<TrainStats> TrainKto(const UnpairedInputs& inputs, const AlgorithmConfig& config);

  // Masked next-token NLL over response tokens. Stats: loss, num_tokens, grad_norm, steps.
  absl::StatusOr<TrainStats> TrainSft(const SequenceBatch& batch, const AlgorithmConfig& config);

  // `dir` becomes a Hugging Face model directory (+ v_head.summary.*) with optimizer.safetensors
  // (per parameter: <name>.exp_avg, <name>.exp_avg_sq, <name>.step) and trainer_state.json,
  // written to a staging directory and renamed into place (a reader sees the old or the new).
  absl::Status SaveCheckpoint(const std::filesystem::path& dir);
  // The model alone in Hugging Face layout (no value head, no optimizer state), atomically.
  // `dtype`: the exported weights' (default: the parameters').
  absl::Status ExportPretrained(const std::filesystem::path& dir,
                                std::optional<torch::ScalarType> dtype = std::nullopt);
  // Restores weights, optimizer state and policy_version written by SaveCheckpoint. Checks
  // everything before changing anything: on error the trainer is unchanged. A plain Hugging
  // Face directory (no trainer_state.json) resets the trainer to its weights with a fresh
  // optimizer and policy_version 0 (how a coordinator starts a new job on a used actor).
  absl::Status LoadCheckpoint(const std::filesystem::path& dir);

  // The whole training state (weights, AdamW moments and steps, policy_version) from rank
  // 0 of `group` to its other ranks: how a rank that rejoined the group catches up. A
  // collective (every rank calls it). On error the other ranks' state is undefined until
  // the next BroadcastState or LoadCheckpoint. trainer_state_sync.cc.
  absl::Status BroadcastState(DataParallelGroup& group);

  // (checkpoint key, detached tensor) for every parameter; v_head.* only when asked.
  std::vector<std::pair<std::string, torch::Tensor>> NamedWeights(bool include_value_head) const;

  // Polled before every optimizer step of a Train* call: true stops the call with
  // CANCELLED (the steps already taken stay). With several ranks the decision is
  // collective (any rank's true stops all), so no rank is left in an all-reduce. Null: none.
  void set_interrupt(std::function<bool()> interrupt) { interrupt_ = std::move(interrupt); }

  int64_t policy_version() const { return policy_version_; }
  bool is_reward_model() const { return classifier_ != nullptr; }
  model::CausalLm& model() { return *model_; }  // policy trainers only
  const TrainerOptions& options() const { return options_; }

 private:
  PolicyTrainer(std::shared_ptr<model::CausalLm> model,
                std::shared_ptr<model::SequenceClassifier> classifier, TrainerOptions options,
                std::shared_ptr<GradientAllReducer> all_reducer);
  static absl::Status CheckOptions(const TrainerOptions& options);
  absl::Status RequirePolicy(const char* what) const;
  absl::StatusOr<TrainStats> TrainRewardModelImpl(const PreferenceInputs& inputs,
                                                  const AlgorithmConfig& config);

  // The policy's token log-probs (and entropy when asked) on minibatch `mb`, with autograd,
  // on the model's device.
  absl::StatusOr<model::TokenLogprobs> Forward(const PaddedBatch& mb, double temperature,
                                               bool entropy);
  // All-reduce, clip, AdamW step, zero grads, ++policy_version. Returns the grad norm.
  absl::StatusOr<double> OptimizerStep(const AlgorithmConfig& config);
  // Validates `config` and sets this step's AdamW settings (config.optimizer, else the
  // trainer's own) on every parameter group. Call first in every training step.
  absl::Status BeginStep(const AlgorithmConfig& config);
  // One micro-batch's share of its minibatch's loss, with autograd: the loss over
  // micro.rows (indices into the step's rows) times micro.row_share or token_share, as
  // the loss averages over rows or tokens, so the micro-batches' gradients add up to the
  // minibatch's. It adds its own statistics to `stats` (weighted by the row share;
  // RunMinibatches adds loss and grad_norm).
  using MinibatchLoss = std::function<absl::StatusOr<torch::Tensor>(const MicroBatch& micro,
                                                                    StatsAccumulator& stats)>;
  // config.ppo_epochs passes over SplitRows(rows, num_minibatches); each minibatch runs as
  // micro-batches of config.max_tokens_per_microbatch (forward in config.precision,
  // backward each), then one OptimizerStep, always (a data-parallel rank never skips the
  // collective step).
  absl::StatusOr<TrainStats> RunMinibatches(const RowShapes& shapes, const AlgorithmConfig& config,
                                            const MinibatchLoss& minibatch_loss);
  // The interrupt_'s verdict, agreed over the ranks.
  absl::StatusOr<bool> Interrupted();
  absl::StatusOr<TrainStats> TrainPolicyGradientImpl(const PolicyGradientInputs& inputs,
                                                     const AlgorithmConfig& config);
  absl::StatusOr<TrainStats> TrainPreferenceImpl(const PreferenceInputs& inputs,
                                                 const AlgorithmConfig& config);
  absl::StatusOr<TrainStats> TrainKtoImpl(const UnpairedInputs& inputs,
                                          const AlgorithmConfig& config);
  absl::StatusOr<TrainStats> TrainSftImpl(const SequenceBatch& batch,
                                          const AlgorithmConfig& config);

  std::shared_ptr<model::CausalLm> model_;                 // a policy trainer, or
  std::shared_ptr<model::SequenceClassifier> classifier_;  // a reward-model trainer
  TrainerOptions options_;
  std::shared_ptr<GradientAllReducer> all_reducer_;
  std::vector<std::pair<std::string, torch::Tensor>> parameters_;  // named_parameters order
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::function<bool()> interrupt_;
  int64_t policy_version_ = 0;
};

// Rows [0, B) split into `parts` contiguous, near-equal minibatches (empty ones dropped).
std::vector<std::vector<int64_t>> SplitRows(int64_t rows, int64_t parts);

}  // namespace rlhf::train
