#pragma once
// The weight sync of the services inside one process (ServiceChannels::weight_sync, set by
// LocalServices), instead of the ExportWeights -> LoadWeights stream's snapshot, chunks,
// serialisation and reassembly: a rollout holding the trainer's dtype on its device
// shares the trainer's weight tensors (no copy, and no second copy of the policy in
// memory: the colocated "hybrid engine"; the synchronous loop never generates while it
// trains), any other copies them once, converting dtype and device on the way
// (RolloutCore::ShareWeights). The outcome is the stream's: the same checks (every
// parameter present, shapes equal, nothing installed unless all are), the same weights (a
// float32 -> bf16 conversion rounds once either way), the actor's version served, and
// stats counted as the stream in `wire_dtype` would count them (the coordinator's dtype
// negotiation is unchanged). `share` false always copies: a pipelined job
// (runtime.max_policy_lag > 0) generates while it trains, so the sampler needs its own.

#include "absl/status/statusor.h"
#include "common/serving/actor/actor_core.h"
#include "common/serving/rollout/rollout_core.h"
#include "services/coordinator/service_clients.h"

namespace rlhf::coordinator {

absl::StatusOr<InProcessSync> SyncWeightsInProcess(actor::ActorCore& actor,
                                                   rollout::RolloutCore& rollout,
                                                   v1::DataType wire_dtype, bool share = true);

}  // namespace rlhf::coordinator
