#pragma once
// What the job commands share: exit statuses, flag parsing, and following a job's events
// (`rlhf watch` over gRPC, `rlhf local` in-process) as progress lines and metrics JSONL.

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/cli/flags.h"
#include "rlhf/v1/job.pb.h"

namespace rlhf::cli {

// Prints "rlhf COMMAND: error: ..." and returns the exit status: 2 for bad input, else 1.
int Fail(const std::string& command, const absl::Status& status);

// Parses flags; returns -1 to go on, else the exit status (help, or a flag error).
int ParseFlags(FlagSet& flags, const std::vector<std::string>& args, const std::string& command,
               size_t positional);

// "%.4g".
std::string Number(double value);

// One line per iteration: "iter 3/10 | reward 0.52 ± 0.10 | kl 0.012 | ... | 2.3 s".
std::string FormatProgress(const v1::JobEvent& event);

// Opens `path` (truncated) for --metrics-jsonl before any work starts, so a bad path fails
// at once with the system's reason; an empty path leaves `out` closed.
absl::Status OpenMetricsJsonl(const std::string& path, std::ofstream* out);

// Prints events until the terminal one; 0 when the job succeeded. With `metrics_out`
// open, also appends each iteration's metrics to it as they arrive.
int FollowEvents(const std::function<bool(v1::JobEvent*)>& next, const std::string& command,
                 std::ofstream& metrics_out);

}  // namespace rlhf::cli
