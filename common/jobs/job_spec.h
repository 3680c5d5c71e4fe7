#pragma once
// Job specs: JSON (protobuf's JSON mapping of rlhf.v1.JobSpec) in and out, defaults, and
// validation before any work starts. Every bad field is reported at once, one per line,
// as "<field path>: <why>" (e.g. "optimizer.learning_rate: must be > 0, got -1").
// All functions are thread-safe (no shared state).

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rlhf/v1/job.pb.h"

namespace rlhf::jobs {

// The algorithms JobSpec.algorithm accepts.
bool IsKnownAlgorithm(std::string_view algorithm);
bool IsOnlineRlAlgorithm(std::string_view algorithm);  // ppo, grpo, rloo, reinforce_pp, distill

// Parses JSON text; `source` (a file name, or "request") prefixes errors. Unknown fields
// are errors (a typo must not silently become a default). No defaults applied.
absl::StatusOr<v1::JobSpec> ParseJobSpecJson(std::string_view json, std::string_view source);

// Serialises with snake_case field names, every set field included.
absl::StatusOr<std::string> JobSpecToJson(const v1::JobSpec& spec);

// Fills every unset field with its documented default (job.proto). Idempotent. Defaults
// that depend on the algorithm (learning rate, samples per prompt, beta) use
// spec->algorithm, so call this after the algorithm is set.
void ApplyJobSpecDefaults(v1::JobSpec* spec);

struct ValidateOptions {
  // Check that model directories and dataset files exist (off for a spec that will run
  // on another machine).
  bool check_files = true;
  // Also read the datasets and report their bad lines (needs check_files).
  bool check_dataset_contents = true;
};

// InvalidArgument listing every problem as "<field path>: <why>", one per line.
// Expects defaults applied (unset optional fields count as their default anyway).
absl::Status ValidateJobSpec(const v1::JobSpec& spec, const ValidateOptions& options = {});

// Reads `path`, parses, applies defaults and validates. NotFound if the file cannot be
// read; InvalidArgument naming the file for malformed JSON or invalid fields.
absl::StatusOr<v1::JobSpec> LoadJobSpecFile(const std::string& path,
                                            const ValidateOptions& options = {});

}  // namespace rlhf::jobs
