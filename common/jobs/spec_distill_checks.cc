// On-policy distillation's requirements: a teacher (models.reference_dir) that is not the
// student and shares its tokenizer, a positive fixed KL coefficient, and no reward.

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/jobs/algorithms.h"
#include "common/jobs/spec_checks.h"
#include "common/tokenizer/json_config.h"

namespace rlhf::jobs {

namespace fs = std::filesystem;

void CheckDistill(const v1::JobSpec& spec, const ValidateOptions& options, SpecErrors* errors) {
  const AlgorithmFacts* facts = FindAlgorithm(spec.algorithm());
  const bool distill = facts != nullptr && facts->id == JobAlgorithm::kDistill;
  const std::string& kind = spec.reward().kind();
  if (!distill) {
    if (kind == "none") {
      errors->Add("reward.kind",
                  absl::StrCat("\"none\" is distill's; ", spec.algorithm(), " needs a reward"));
    }
    return;
  }
  if (kind != "none") {
    errors->Add("reward.kind",
                absl::StrCat("distill takes no reward (its signal is the teacher's log-probs); "
                             "leave it unset or \"none\", got \"",
                             kind, "\""));
  }
  const v1::ModelsSpec& models = spec.models();
  if (models.reference_dir().empty() || models.reference_dir() == models.policy_dir()) {
    errors->Add("models.reference_dir",
                "distill needs a teacher: set it to a model other than models.policy_dir");
  } else if (options.check_files) {
    auto student = tokenizer::ReadFileToString(fs::path(models.policy_dir()) / "tokenizer.json");
    auto teacher = tokenizer::ReadFileToString(fs::path(models.reference_dir()) / "tokenizer.json");
    if (student.ok() && teacher.ok() && *student != *teacher) {
      errors->Add("models.reference_dir",
                  "the teacher's tokenizer.json differs from the policy's: distillation compares "
                  "log-probs of the same token ids, so both must share one tokenizer");
    }
  }
  if (!(spec.kl().coef() > 0)) {
    errors->Add("kl.coef", "distill's loss is kl.coef times the reverse KL to the teacher: > 0");
  }
  if (spec.kl().adaptive()) {
    errors->Add("kl.adaptive", "distill's KL coefficient is fixed; the controller does not apply");
  }
}

}  // namespace rlhf::jobs
