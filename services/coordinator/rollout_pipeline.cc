// JobLoop's bounded-staleness pipeline (runtime.max_policy_lag = 1, veRL's
// one-step-off-policy): while the actor judges and trains on batch k, a background task
// samples batch k + 1 from the rollout's weights of iteration k - 1; the loop awaits it
// before the weight sync (a sync never lands in the middle of a Generate), and iteration
// k + 1 trains on it. The task touches only the data stream, the tokenizer and the
// (thread-safe) clients; the loop leaves the data stream alone until the task is joined.

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/jobs/metric_names.h"
#include "common/status/status_macros.h"
#include "services/coordinator/job_loop.h"

namespace rlhf::coordinator {

void JobLoop::StartPrefetch(int64_t iteration) {
  DropPrefetch();
  prefetch_iteration_ = iteration;
  prefetch_cursor_ = data_->cursor();
  const int64_t version = policy_version_;  // what the rollout serves until the next sync
  prefetch_ = std::async(std::launch::async, [this, iteration, version] {
    Prefetched out;
    out.status = SampleRollout(iteration, version, &out.rollout, &out.judged, &out.metrics);
    return out;
  });
}

void JobLoop::AwaitPrefetch(Metrics* metrics) {
  if (!prefetch_.valid()) return;
  const auto start = Clock::now();
  prefetch_.wait();
  (*metrics)[metric::kTimeGenerateWaitSeconds] = Seconds(start);
}

void JobLoop::DropPrefetch() {
  if (prefetch_.valid()) prefetch_.get();
  prefetch_iteration_ = 0;
}

int64_t JobLoop::CheckpointCursor() const {
  return prefetch_iteration_ != 0 ? prefetch_cursor_ : data_->cursor();
}

absl::Status JobLoop::TakeRollout(int64_t iteration, Rollout* rollout, Judged* judged,
                                  Metrics* metrics) {
  if (prefetch_.valid() && prefetch_iteration_ == iteration) {
    Prefetched prefetched = prefetch_.get();
    prefetch_iteration_ = 0;
    RLHF_RETURN_IF_ERROR(prefetched.status);
    // Never train on samples older than the bound (a role that lost its state shows here
    // too, as a version mismatch, and the job recovers from its checkpoint).
    const int64_t sampled = prefetched.rollout.generated.policy_version();
    if (sampled > policy_version_ ||
        policy_version_ - sampled > last_train_steps_ * spec_.runtime().max_policy_lag()) {
      return RoleVersionMismatch("rollout (prefetched batch)", sampled, policy_version_);
    }
    *rollout = std::move(prefetched.rollout);
    *judged = std::move(prefetched.judged);
    for (const auto& [name, value] : prefetched.metrics) (*metrics)[name] = value;
    return absl::OkStatus();
  }
  DropPrefetch();
  return SampleRollout(iteration, policy_version_, rollout, judged, metrics);
}

}  // namespace rlhf::coordinator
