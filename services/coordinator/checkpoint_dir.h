#pragma once
// A job's checkpoint directory is the coordinator's to write and prune only when it holds
// nothing but checkpoints: iter-NNNNNN (and their .iter-*.tmp staging), final, and the
// marker file naming the job that last used it. A directory holding anything else (a
// model, a dataset, someone's notes) is refused before anything is written, so pruning
// old checkpoints or replacing a stale one never deletes what the coordinator did not
// create.

#include <filesystem>
#include <string>

#include "absl/status/status.h"

namespace rlhf::coordinator {

inline constexpr char kCheckpointMarker[] = ".rlhf-checkpoints";

// Creates `dir` when missing and writes the marker (the job id); FailedPrecondition
// naming `dir` and one foreign entry when it holds anything but checkpoints.
absl::Status ClaimCheckpointDir(const std::filesystem::path& dir, const std::string& job_id);

// True for the entries ClaimCheckpointDir allows: what the coordinator writes there.
bool IsCheckpointEntry(const std::string& name);

}  // namespace rlhf::coordinator
