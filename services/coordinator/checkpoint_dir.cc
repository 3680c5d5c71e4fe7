#include "services/coordinator/checkpoint_dir.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"

namespace rlhf::coordinator {
namespace fs = std::filesystem;

bool IsCheckpointEntry(const std::string& name) {
  return absl::StartsWith(name, "iter-") || absl::StartsWith(name, ".iter-") || name == "final" ||
         absl::StartsWith(name, ".final.staging-") || name == kCheckpointMarker;
}

absl::Status ClaimCheckpointDir(const fs::path& dir, const std::string& job_id) {
  std::error_code error;
  if (fs::exists(dir, error) && !fs::is_directory(dir, error)) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint.dir ", dir.string(), " exists and is not a directory"));
  }
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (!IsCheckpointEntry(name)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint.dir ", dir.string(), " holds other files ('", name,
          "'): nothing there is written or deleted; give the job an empty directory or its own"));
    }
  }
  fs::create_directories(dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create checkpoint.dir ", dir.string(), ": ", error.message()));
  }
  return io::WriteFileAtomically(dir / kCheckpointMarker, job_id + "\n");
}

}  // namespace rlhf::coordinator
