#pragma once
// The job-API client commands `submit`, `status`, `list`, `cancel`, `watch` (against
// --coordinator) and `health`. Each returns the process exit status: 0 success, 2 bad
// input, 1 any other error (for `watch`: 1 when the job did not succeed).

#include <string>
#include <vector>

#include "rlhf/v1/job.pb.h"

namespace rlhf::cli {

int RunSubmit(const std::vector<std::string>& args);
int RunStatus(const std::vector<std::string>& args);
int RunList(const std::vector<std::string>& args);
int RunCancel(const std::vector<std::string>& args);
int RunWatch(const std::vector<std::string>& args);
int RunHealth(const std::vector<std::string>& args);

}  // namespace rlhf::cli
