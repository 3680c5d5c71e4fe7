#pragma once
// Internal to rlhf_jobs: the field-by-field checks behind ValidateJobSpec. Each appends
// "<field path>: <why>" lines to SpecErrors and never stops at the first problem.

#include <array>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "common/jobs/job_spec.h"
#include "rlhf/v1/job.pb.h"

namespace rlhf::jobs {

class SpecErrors {
 public:
  void Add(std::string_view field_path, std::string_view why);
  bool empty() const { return lines_.empty(); }
  size_t size() const { return lines_.size(); }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
};

// One field's rule: each adds "<path>: must be <what>, got <value>" when broken.
void CheckNumber(double value, bool ok, std::string_view path, std::string_view what,
                 SpecErrors* errors);
void Positive(double v, std::string_view path, SpecErrors* e);
void NonNegative(double v, std::string_view path, SpecErrors* e);
void UnitClosed(double v, std::string_view path, SpecErrors* e);
void UnitHalfOpen(double v, std::string_view path, SpecErrors* e);
void CheckOneOf(const std::string& value, std::initializer_list<const char*> allowed,
                std::string_view path, SpecErrors* errors);

// The spec passed to these has defaults applied.
void CheckAlgorithmAndModels(const v1::JobSpec& spec, const ValidateOptions& options,
                             SpecErrors* errors);
void CheckHyperparameters(const v1::JobSpec& spec, SpecErrors* errors);
void CheckRewardAndEndpoints(const v1::JobSpec& spec, SpecErrors* errors);
void CheckData(const v1::JobSpec& spec, const ValidateOptions& options, SpecErrors* errors);
// spec_online_checks.cc: the online algorithms' loss variants (clip-higher, GSPO, CISPO,
// loss aggregation, TIS) and DAPO's reward shaping and dynamic sampling.
void CheckOnlineVariants(const v1::JobSpec& spec, SpecErrors* errors);
// spec_distill_checks.cc
void CheckDistill(const v1::JobSpec& spec, const ValidateOptions& options, SpecErrors* errors);
// spec_limits.cc: upper bounds on every size and count (overflow-safe products).
void CheckLimits(const v1::JobSpec& spec, SpecErrors* errors);

}  // namespace rlhf::jobs
