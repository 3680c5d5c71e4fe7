#include <string>

#include "absl/strings/str_cat.h"
#include "common/jobs/algorithms.h"
#include "common/jobs/spec_checks.h"

namespace rlhf::jobs {

// Each names the algorithms it applies to, so no setting is silently ignored.
void CheckOnlineVariants(const v1::JobSpec& spec, SpecErrors* errors) {
  const v1::PpoSpec& ppo = spec.ppo();
  const std::string& algorithm = spec.algorithm();
  const bool grpo = algorithm == "grpo";
  const bool rloo = algorithm == "rloo";
  Positive(ppo.clip_range_high(), "ppo.clip_range_high", errors);
  CheckOneOf(ppo.importance_sampling_level(), {"token", "sequence"},
             "ppo.importance_sampling_level", errors);
  if (ppo.importance_sampling_level() == "sequence" && !grpo) {
    errors->Add("ppo.importance_sampling_level",
                absl::StrCat("\"sequence\" (GSPO) applies to grpo only, not ", algorithm));
  }
  CheckOneOf(ppo.policy_loss(), {"clip", "cispo"}, "ppo.policy_loss", errors);
  if (ppo.policy_loss() == "cispo" && !grpo) {
    errors->Add("ppo.policy_loss", absl::StrCat("\"cispo\" applies to grpo only, not ", algorithm));
  }
  CheckOneOf(ppo.loss_aggregation(), {"token_mean", "sequence_mean", "constant_normalizer"},
             "ppo.loss_aggregation", errors);
  if (rloo && ppo.loss_aggregation() != "token_mean") {
    errors->Add("ppo.loss_aggregation",
                "rloo's loss is a mean over sequences of a sequence-level ratio; leave it at "
                "\"token_mean\"");
  }
  CheckNumber(ppo.tis_cap(), ppo.tis_cap() == 0 || ppo.tis_cap() >= 1, "ppo.tis_cap",
              "0 (off) or >= 1", errors);
  if (rloo && ppo.tis_cap() != 0) {
    errors->Add("ppo.tis_cap", "rloo's ratio is per sequence; token-level TIS does not apply");
  }
  const v1::RewardSpec& reward = spec.reward();
  const int64_t buffer = reward.overlong_buffer_tokens();
  const int64_t max_response = spec.generation().max_response_tokens();
  if (buffer < 0 || (buffer > 0 && buffer >= max_response)) {
    errors->Add("reward.overlong_buffer_tokens",
                absl::StrCat("must be >= 0 and < generation.max_response_tokens (", max_response,
                             "), got ", buffer));
  }
  NonNegative(reward.overlong_penalty(), "reward.overlong_penalty", errors);
  if (buffer > 0 && !IsOnlineRlAlgorithm(algorithm)) {
    errors->Add(
        "reward.overlong_buffer_tokens",
        absl::StrCat("shapes the rewards of sampled responses; ", algorithm, " samples none"));
  }
  const v1::GenerationSpec& gen = spec.generation();
  if (gen.dynamic_sampling() && !grpo && !rloo) {
    errors->Add("generation.dynamic_sampling",
                absl::StrCat("applies to grpo and rloo (group baselines), not ", algorithm));
  }
  const int64_t lag = spec.runtime().max_policy_lag();
  if (lag < 0 || lag > 1) {
    errors->Add("runtime.max_policy_lag", absl::StrCat("must be 0 or 1, got ", lag));
  } else if (lag > 0 && !IsOnlineRlAlgorithm(algorithm)) {
    errors->Add("runtime.max_policy_lag",
                absl::StrCat("pipelines sampling with training; ", algorithm, " samples none"));
  }
  CheckNumber(static_cast<double>(gen.max_sampling_rounds()),
              gen.max_sampling_rounds() >= 1 && gen.max_sampling_rounds() <= 64,
              "generation.max_sampling_rounds", "in [1, 64]", errors);

  const bool rejection = algorithm == "rejection_sampling";
  const v1::RejectionSamplingSpec& rs = spec.rejection_sampling();
  if (rs.has_min_score()) {
    CheckNumber(rs.min_score(), true, "rejection_sampling.min_score", "finite", errors);
    if (!rejection) {
      errors->Add("rejection_sampling.min_score",
                  absl::StrCat("applies to rejection_sampling only, not ", algorithm));
    }
  }
  if (rejection && ppo.tis_cap() != 0) {
    errors->Add("ppo.tis_cap",
                "rejection_sampling takes SFT steps on its samples: no importance weights");
  }
  if (rejection && spec.kl().adaptive()) {
    errors->Add("kl.adaptive", "rejection_sampling has no KL penalty to adapt");
  }
}

}  // namespace rlhf::jobs
