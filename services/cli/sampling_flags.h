#pragma once
// The sampling flags `rlhf generate` and `rlhf best-of-n` share.

#include <cstdint>

#include "absl/status/statusor.h"
#include "common/cli/flags.h"
#include "common/model/sampling.h"

namespace rlhf::cli {

struct SamplingFlags {
  int64_t max_new_tokens = 64;
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;

  // --max-new-tokens, --temperature (0: greedy), --top-p, --top-k.
  void Register(FlagSet& flags);
  // The parameters, or InvalidArgument naming the flag that is out of range.
  absl::StatusOr<model::SamplingParams> Params() const;
};

}  // namespace rlhf::cli
