#pragma once
// The typed rlhf.v1.TrainConfig of a job's Train calls, built from its spec (defaults
// applied): one function, so `rlhf local` and a remote actor receive the same optimizer
// and loss settings, field for field.

#include <cstdint>

#include "rlhf/v1/actor.pb.h"
#include "rlhf/v1/job.pb.h"

namespace rlhf::jobs {

// `rows`: the rows of this Train call (minibatches never outnumber them);
// `policy_version`: optimizer steps taken so far (the learning-rate warmup's position).
v1::TrainConfig TrainConfigForJob(const v1::JobSpec& spec, int64_t rows, int64_t policy_version);

// runtime.precision as the wire enum (Train and Evaluate calls carry it).
v1::Precision PrecisionOf(const v1::JobSpec& spec);

// Whether the job asks the reference model for log-probs: the offline methods that use
// them (DPO family, KTO), and online jobs whose KL penalty can be non-zero (kl.coef > 0 or
// the adaptive controller). An online job with kl.coef 0 (TRL GRPO's default beta) neither
// loads a reference in `rlhf local` nor calls one, and reports no `kl` metric.
bool JobUsesReference(const v1::JobSpec& spec);

// optimizer.learning_rate scaled by the linear warmup over optimizer.warmup_steps.
double WarmupLearningRate(const v1::OptimizerSpec& optimizer, int64_t policy_version);

}  // namespace rlhf::jobs
