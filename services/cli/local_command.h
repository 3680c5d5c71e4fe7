#pragma once
// `rlhf local JOB.json`: the whole system in this process (every service over in-process
// gRPC channels), a progress line per iteration, then a summary. Returns the exit status:
// 0 when the job succeeded, 2 for bad input, 1 otherwise.

#include <string>
#include <vector>

namespace rlhf::cli {

int RunLocal(const std::vector<std::string>& args);

}  // namespace rlhf::cli
