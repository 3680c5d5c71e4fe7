// Upper bounds on every size and count in a JobSpec, so that no product of them overflows
// later (the rollout's int32 sample counts, prompt + response lengths, rows x width
// allocations) and a typo like batch_size 10000000 is refused at submission, not after
// the services have tried to allocate it. The bounds are far above any real job.

#include <cstdint>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/jobs/spec_checks.h"

namespace rlhf::jobs {
namespace {

constexpr int64_t kMaxTokens = int64_t{1} << 20;            // per prompt or response
constexpr int64_t kMaxRowsPerIteration = int64_t{1} << 20;  // batch x samples per prompt
constexpr int64_t kMaxTokensPerIteration = int64_t{1} << 32;

void AtMost(int64_t value, int64_t limit, std::string_view path, SpecErrors* errors) {
  if (value > limit) {
    errors->Add(path, absl::StrCat("must be <= ", limit, ", got ", value));
  }
}

}  // namespace

void CheckLimits(const v1::JobSpec& spec, SpecErrors* errors) {
  const v1::TrainingSpec& training = spec.training();
  const v1::GenerationSpec& gen = spec.generation();
  AtMost(training.batch_size(), 65536, "training.batch_size", errors);
  AtMost(training.ppo_epochs(), 1000, "training.ppo_epochs", errors);
  AtMost(training.iterations(), 1000000000, "training.iterations", errors);
  AtMost(gen.max_prompt_tokens(), kMaxTokens, "generation.max_prompt_tokens", errors);
  AtMost(gen.max_response_tokens(), kMaxTokens, "generation.max_response_tokens", errors);
  AtMost(gen.samples_per_prompt(), 1024, "generation.samples_per_prompt", errors);
  AtMost(gen.top_k(), kMaxTokens, "generation.top_k", errors);
  AtMost(spec.optimizer().warmup_steps(), int64_t{1} << 40, "optimizer.warmup_steps", errors);
  AtMost(spec.kl().horizon(), int64_t{1} << 40, "kl.horizon", errors);
  AtMost(spec.checkpoint().interval(), 1000000000, "checkpoint.interval", errors);
  AtMost(spec.checkpoint().keep_last(), 1000000, "checkpoint.keep_last", errors);
  AtMost(spec.reward().target_length(), kMaxTokens, "reward.target_length", errors);
  AtMost(spec.runtime().num_actor_ranks(), 4096, "runtime.num_actor_ranks", errors);
  AtMost(spec.endpoints().rollout_size(), 256, "endpoints.rollout", errors);
  // Products only of values already within their bounds, so they cannot overflow.
  const int64_t batch = training.batch_size(), samples = gen.samples_per_prompt();
  if (batch > 0 && batch <= 65536 && samples > 0 && samples <= 1024) {
    AtMost(batch * samples, kMaxRowsPerIteration,
           "training.batch_size x generation.samples_per_prompt", errors);
    const int64_t prompt = gen.max_prompt_tokens(), response = gen.max_response_tokens();
    if (prompt > 0 && prompt <= kMaxTokens && response > 0 && response <= kMaxTokens) {
      AtMost(batch * samples * (prompt + response), kMaxTokensPerIteration,
             "training.batch_size x generation.samples_per_prompt x (max_prompt_tokens + "
             "max_response_tokens)",
             errors);
    }
  }
}

}  // namespace rlhf::jobs
