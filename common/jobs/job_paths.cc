#include "common/jobs/job_paths.h"

#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "common/io/confined_path.h"

namespace rlhf::jobs {

absl::Status ConfineJobPaths(const PathRoots& roots, v1::JobSpec* spec) {
  std::vector<std::string> errors;
  auto confine = [&](const std::filesystem::path& root, const std::string& field,
                     std::string* path) {
    if (path->empty() || root.empty()) return;  // unset (ValidateJobSpec names required ones)
    auto resolved = io::ResolveUnder(root, *path, field);
    if (!resolved.ok()) {
      errors.emplace_back(resolved.status().message());
      return;
    }
    *path = resolved->string();
  };
  v1::ModelsSpec* models = spec->mutable_models();
  confine(roots.data, "models.policy_dir", models->mutable_policy_dir());
  confine(roots.data, "models.reference_dir", models->mutable_reference_dir());
  confine(roots.data, "models.reward_dir", models->mutable_reward_dir());
  confine(roots.data, "data.train_path", spec->mutable_data()->mutable_train_path());
  confine(roots.data, "data.eval_path", spec->mutable_data()->mutable_eval_path());
  confine(roots.checkpoints, "checkpoint.dir", spec->mutable_checkpoint()->mutable_dir());
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "; "));
}

}  // namespace rlhf::jobs
