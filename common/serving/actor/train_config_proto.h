#pragma once
// rlhf.v1.TrainConfig (what a Train call carries) -> train::AlgorithmConfig (what the
// trainer runs): a field-for-field translation, then the trainer's own validation.

#include "absl/status/statusor.h"
#include "common/train/algorithm_config.h"
#include "rlhf/v1/actor.pb.h"

namespace rlhf::actor {

// InvalidArgument naming the field for an unknown algorithm or dpo_loss_type and for
// values out of range. An unset optimizer leaves AlgorithmConfig::optimizer unset (the
// actor's own flags apply).
absl::StatusOr<train::AlgorithmConfig> AlgorithmConfigFromProto(const v1::TrainConfig& proto);

// InvalidArgument for a value the enum does not name (a newer client).
absl::StatusOr<train::Precision> PrecisionFromProto(v1::Precision precision);

}  // namespace rlhf::actor
