#pragma once
// The weight sync of the services inside one process (ServiceChannels::weight_sync, set by
// LocalServices): the rollout copies the actor's weights directly, one copy that converts
// dtype and device on the way, instead of the ExportWeights -> LoadWeights stream's
// snapshot, chunks, serialisation and reassembly. The outcome is the stream's: the same
// checks (RolloutCore::SwapWeights: every parameter present, shapes equal, nothing copied
// unless all are), the same weights (a float32 -> bf16 conversion rounds once either
// way), the actor's version served, and stats counted as the stream in `wire_dtype`
// would count them (the coordinator's dtype negotiation is unchanged).

#include "absl/status/statusor.h"
#include "common/serving/actor/actor_core.h"
#include "common/serving/rollout/rollout_core.h"
#include "services/coordinator/service_clients.h"

namespace rlhf::coordinator {

absl::StatusOr<InProcessSync> SyncWeightsInProcess(actor::ActorCore& actor,
                                                   rollout::RolloutCore& rollout,
                                                   v1::DataType wire_dtype);

}  // namespace rlhf::coordinator
