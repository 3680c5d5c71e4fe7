#pragma once
// `rlhf local` (the whole system in this process) and the job-API client commands
// `submit`, `status`, `list`, `cancel`, `watch` (against --coordinator) and `health`.
// Each returns the process exit status: 0 success, 2 bad input, 1 any other error
// (for `watch` and `local`: 1 when the job did not succeed).

#include <string>
#include <vector>

#include "rlhf/v1/job.pb.h"

namespace rlhf::cli {

int RunLocal(const std::vector<std::string>& args);
int RunSubmit(const std::vector<std::string>& args);
int RunStatus(const std::vector<std::string>& args);
int RunList(const std::vector<std::string>& args);
int RunCancel(const std::vector<std::string>& args);
int RunWatch(const std::vector<std::string>& args);
int RunHealth(const std::vector<std::string>& args);

// One line per iteration: "iter 3/10 | reward 0.52 ± 0.10 | kl 0.012 | ... | 2.3 s".
std::string FormatProgress(const v1::JobEvent& event);

}  // namespace rlhf::cli
