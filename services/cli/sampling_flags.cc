#include "services/cli/sampling_flags.h"

namespace rlhf::cli {

void SamplingFlags::Register(FlagSet& flags) {
  flags.Int("max-new-tokens", &max_new_tokens, "most tokens to generate (EOS stops earlier)");
  flags.Float("temperature", &temperature, "softmax temperature; 0 = greedy (argmax)");
  flags.Float("top-p", &top_p, "nucleus sampling: keep the smallest set with this mass; 1 = off");
  flags.Int("top-k", &top_k, "keep only the k most likely tokens; 0 = off");
}

absl::StatusOr<model::SamplingParams> SamplingFlags::Params() const {
  model::SamplingParams params;
  params.max_new_tokens = max_new_tokens;
  params.temperature = static_cast<float>(temperature);
  params.top_k = top_k;
  params.top_p = static_cast<float>(top_p);
  params.greedy = temperature == 0.0;
  if (auto s = model::ValidateSamplingParams(params); !s.ok()) {
    return InTermsOfFlags(s, {{"max_new_tokens", "--max-new-tokens"},
                              {"temperature", "--temperature"},
                              {"top_k", "--top-k"},
                              {"top_p", "--top-p"}});
  }
  return params;
}

}  // namespace rlhf::cli
