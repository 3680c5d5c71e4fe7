#include "common/jobs/algorithms.h"

#include <array>

namespace rlhf::jobs {
namespace {

using enum JobAlgorithm;
using enum KlPlacement;
using enum DatasetFormat;

// Learning rates: TRL 0.24's SFTConfig 2e-5, RewardConfig 1e-5, PPOConfig 3e-6,
// GRPO/RLOO/DPO/KTO/ORPO/CPO configs 1e-6. Betas: DPOConfig 0.1, CPOConfig (SimPO) 2.0.
constexpr std::array<AlgorithmFacts, 13> kAlgorithms = {{
    // id, name, online, critic, reference_logprobs, kl, format, trainer_name, lr,
    // samples_per_prompt (default, min), beta, rewarded
    {kPpo, "ppo", true, true, false, kRewards, kPromptOnly, "ppo", 3e-6, 1, 1, 0.1, true},
    {kGrpo, "grpo", true, false, false, kLoss, kPromptOnly, "grpo", 1e-6, 4, 2, 0.1, true},
    {kRloo, "rloo", true, false, false, kAdvantages, kPromptOnly, "rloo", 1e-6, 4, 2, 0.1, true},
    {kReinforcePlusPlus, "reinforce_pp", true, false, false, kRewards, kPromptOnly, "reinforce_pp",
     1e-6, 4, 1, 0.1, true},
    {kDpo, "dpo", false, false, true, kNone, kPreference, "dpo", 1e-6, 1, 1, 0.1, false},
    {kIpo, "ipo", false, false, true, kNone, kPreference, "dpo", 1e-6, 1, 1, 0.1, false},
    {kKto, "kto", false, false, true, kNone, kUnpairedPreference, "kto", 1e-6, 1, 1, 0.1, false},
    {kOrpo, "orpo", false, false, false, kNone, kPreference, "orpo", 1e-6, 1, 1, 0.1, false},
    {kSimpo, "simpo", false, false, false, kNone, kPreference, "simpo", 1e-6, 1, 1, 2.0, false},
    {kSft, "sft", false, false, false, kNone, kPromptCompletion, "sft", 2e-5, 1, 1, 0.1, false},
    {kRewardModel, "reward_model", false, false, false, kNone, kPreference, "reward_model", 1e-5, 1,
     1, 0.1, false},
    // On-policy distillation: the reference service holds the teacher; each sampled token's
    // advantage is minus its reverse KL to the teacher (Thinking Machines / Qwen3), no reward.
    {kDistill, "distill", true, false, false, kRewards, kPromptOnly, "reinforce_pp", 1e-6, 1, 1,
     0.1, false},
    // RAFT / expert iteration: sample, keep the best, SFT on them (SFTConfig's learning rate).
    {kRejectionSampling, "rejection_sampling", true, false, false, kNone, kPromptOnly, "sft", 2e-5,
     4, 2, 0.1, true},
}};

}  // namespace

std::span<const AlgorithmFacts> AllAlgorithms() { return kAlgorithms; }

std::string AlgorithmNames() {
  std::string names;
  for (const AlgorithmFacts& facts : kAlgorithms) {
    if (!names.empty()) names += ", ";
    names += facts.name;
  }
  return names;
}

const AlgorithmFacts* FindAlgorithm(std::string_view name) {
  for (const AlgorithmFacts& facts : kAlgorithms) {
    if (facts.name == name) return &facts;
  }
  return nullptr;
}

}  // namespace rlhf::jobs
