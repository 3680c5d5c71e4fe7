#pragma once
// A job's paths confined to the roots its coordinator serves (rlhf-coordinator
// --data-root, --checkpoint-root): model directories and datasets under the data root,
// the checkpoint directory under the checkpoint root. Relative paths resolve against the
// root; every path is rewritten to its resolved absolute form, so the stored job names
// exactly what runs. A path outside its root is an InvalidArgument naming each field.
// Empty roots confine nothing (`rlhf local`: the user's own process).

#include <filesystem>

#include "absl/status/status.h"
#include "rlhf/v1/job.pb.h"

namespace rlhf::jobs {

struct PathRoots {
  std::filesystem::path data;
  std::filesystem::path checkpoints;
};

absl::Status ConfineJobPaths(const PathRoots& roots, v1::JobSpec* spec);

}  // namespace rlhf::jobs
