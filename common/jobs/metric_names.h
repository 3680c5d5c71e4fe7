#pragma once
// The names of a job's per-iteration metrics: what the actor's Train returns, what the
// coordinator records per iteration (SQLite, WatchJob events, --metrics-jsonl) and exports
// to Prometheus as rlhf_training_* (services/coordinator/training_metrics.cc), and what
// `rlhf watch` / `rlhf local` print. One list, so the producers, the CLI and the README agree.

namespace rlhf::metric {

// Train stats (the actor's TrainResponse.stats: means over the call's optimizer steps).
inline constexpr char kLoss[] = "loss";
inline constexpr char kPolicyLoss[] = "policy_loss";
inline constexpr char kValueLoss[] = "value_loss";
inline constexpr char kEntropy[] = "entropy";
inline constexpr char kClipFraction[] = "clip_fraction";
inline constexpr char kValueClipFraction[] = "value_clip_fraction";
inline constexpr char kApproxKl[] = "approx_kl";
inline constexpr char kKl[] = "kl";
inline constexpr char kGradNorm[] = "grad_norm";
inline constexpr char kSteps[] = "steps";
inline constexpr char kRewardAccuracy[] = "reward_accuracy";
inline constexpr char kRewardMargin[] = "reward_margin";
inline constexpr char kChosenRewards[] = "chosen_rewards";
inline constexpr char kRejectedRewards[] = "rejected_rewards";
inline constexpr char kNllLoss[] = "nll_loss";
inline constexpr char kLogOddsRatio[] = "log_odds_ratio";
inline constexpr char kNumTokens[] = "num_tokens";
// Mean truncated importance-sampling weight over the step's tokens (ppo.tis_cap > 0).
inline constexpr char kTisWeight[] = "tis_weight";

// Rollout and iteration metrics (the coordinator's, per iteration). "kl" is the rollout's
// mean sequence KL to the reference in online jobs (it replaces the trainer's stat).
inline constexpr char kRewardMean[] = "reward_mean";
inline constexpr char kRewardStd[] = "reward_std";
inline constexpr char kKlCoef[] = "kl_coef";
inline constexpr char kNonScoreReward[] = "non_score_reward";
inline constexpr char kResponseLength[] = "response_length";
inline constexpr char kTokensGenerated[] = "tokens_generated";
inline constexpr char kValueMean[] = "value_mean";
// DAPO's overlong shaping (reward.overlong_buffer_tokens > 0): the mean penalty added to
// the scores (<= 0); reward_mean stays the reward's own score.
inline constexpr char kOverlongPenalty[] = "overlong_penalty";
// Dynamic sampling (generation.dynamic_sampling): generate rounds this iteration, and the
// fraction of the groups sampled whose rewards differed.
inline constexpr char kSamplingRounds[] = "sampling_rounds";
inline constexpr char kInformativeGroupFraction[] = "informative_group_fraction";
// Rejection sampling: samples kept for the SFT step, and their mean score.
inline constexpr char kRejectionKept[] = "rejection_kept";
inline constexpr char kRejectionKeptRewardMean[] = "rejection_kept_reward_mean";
// The rollout's sampling log-probs vs the trainer's for the same tokens and policy version
// (when the actor's Evaluate ran): mean |difference|, and KL(rollout || trainer) by k3.
inline constexpr char kRolloutLogprobAbsDiff[] = "rollout_logprob_abs_diff";
inline constexpr char kRolloutKl[] = "rollout_kl";
inline constexpr char kRolloutPolicyVersion[] = "rollout_policy_version";
// Optimizer steps between the weights that sampled the batch and those it trains: 0 in the
// synchronous loop, one iteration's steps with runtime.max_policy_lag 1.
inline constexpr char kPolicyLag[] = "policy_lag";
inline constexpr char kPolicyVersion[] = "policy_version";
inline constexpr char kWeightsVersion[] = "weights_version";
inline constexpr char kSyncBytes[] = "sync_bytes";
inline constexpr char kEpoch[] = "epoch";
inline constexpr char kTokensPerSecond[] = "tokens_per_second";

// Stage timings in seconds (rlhf_training_stage_seconds{stage=...}).
inline constexpr char kTimeGenerateSeconds[] = "time_generate_seconds";
// With runtime.max_policy_lag: how long the loop waited for the prefetched batch after
// training (0 when generation hid entirely behind judging and training).
inline constexpr char kTimeGenerateWaitSeconds[] = "time_generate_wait_seconds";
inline constexpr char kTimeScoreSeconds[] = "time_score_seconds";
inline constexpr char kTimeReferenceSeconds[] = "time_reference_seconds";
inline constexpr char kTimeEvaluateSeconds[] = "time_evaluate_seconds";
inline constexpr char kTimeTrainSeconds[] = "time_train_seconds";
inline constexpr char kTimeSyncSeconds[] = "time_sync_seconds";
inline constexpr char kTimeIterationSeconds[] = "time_iteration_seconds";

}  // namespace rlhf::metric
