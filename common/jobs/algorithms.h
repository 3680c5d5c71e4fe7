#pragma once
// Every JobSpec algorithm and the facts the coordinator, the spec checks and `rlhf local`
// need about it, in one table (instead of string comparisons spread over files).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "common/jobs/dataset.h"

namespace rlhf::jobs {

enum class JobAlgorithm {
  kPpo,
  kGrpo,
  kRloo,
  kReinforcePlusPlus,
  kSft,
  kDpo,
  kIpo,
  kSimpo,
  kOrpo,
  kKto,
  kRewardModel,
  kDistill,
  kRejectionSampling,
};

// Where an online algorithm's KL to the reference goes.
enum class KlPlacement {
  kNone,        // offline algorithms
  kRewards,     // per-token penalty in the rewards (PPO, REINFORCE++)
  kLoss,        // k3 term in the loss (GRPO's beta)
  kAdvantages,  // sequence KL subtracted from the reward before the baseline (RLOO)
};

struct AlgorithmFacts {
  JobAlgorithm id;
  std::string_view name;          // as JobSpec.algorithm spells it
  bool online;                    // samples from the policy every iteration
  bool critic;                    // trains a value head (PPO's critic)
  bool reference_logprobs;        // an offline step needs the reference's log-probs
  KlPlacement kl;                 // online only
  DatasetFormat format;           // the JSONL format it trains on
  std::string_view trainer_name;  // the actor's TrainConfig.algorithm
  double default_learning_rate;   // TRL 0.24's config defaults
  int64_t default_samples_per_prompt;
  int64_t min_samples_per_prompt;  // group baselines need 2
  double default_beta;             // preference.beta
  bool rewarded;                   // online: a reward scores the samples (not distill)
};

// The table, in JobSpec's documented order.
std::span<const AlgorithmFacts> AllAlgorithms();
// "ppo, grpo, ..." for messages.
std::string AlgorithmNames();
// Null for a name that is not a JobSpec algorithm.
const AlgorithmFacts* FindAlgorithm(std::string_view name);

}  // namespace rlhf::jobs
