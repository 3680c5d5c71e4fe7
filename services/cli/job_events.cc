#include "services/cli/job_events.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/jobs/job_state.h"
#include "common/jobs/metric_names.h"

namespace rlhf::cli {
namespace {

// One JSON object per line: the iteration, then its metrics by name.
std::string MetricsJsonLine(const v1::JobEvent& event) {
  nlohmann::json line = {{"iteration", event.iteration()},
                         {"total_iterations", event.total_iterations()}};
  std::map<std::string, double> sorted(event.metrics().begin(), event.metrics().end());
  for (const auto& [name, value] : sorted) {
    if (std::isfinite(value)) line[name] = value;
  }
  return line.dump() + "\n";
}

}  // namespace

int Fail(const std::string& command, const absl::Status& status) {
  std::cerr << "rlhf " << command << ": error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

// Parses flags; returns -1 to go on, else the exit status (help, or a flag error).
int ParseFlags(FlagSet& flags, const std::vector<std::string>& args, const std::string& command,
               size_t positional) {
  if (auto status = flags.Parse(args); !status.ok()) return Fail(command, status);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (flags.positional().size() != positional) {
    return Fail(command, absl::InvalidArgumentError(absl::StrCat(
                             "expected ", positional, " argument", positional == 1 ? "" : "s",
                             ", got ", flags.positional().size(), " (see --help)")));
  }
  return -1;
}

std::string Number(double value) { return absl::StrFormat("%.4g", value); }

std::string FormatProgress(const v1::JobEvent& event) {
  const auto& m = event.metrics();
  auto get = [&](const char* name) -> std::optional<double> {
    auto it = m.find(name);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
  std::string line = absl::StrCat("iter ", event.iteration(), "/", event.total_iterations());
  auto add = [&](const char* label, const char* name) {
    if (auto v = get(name)) absl::StrAppend(&line, " | ", label, " ", Number(*v));
  };
  if (auto reward = get(metric::kRewardMean)) {
    absl::StrAppend(&line, " | reward ", Number(*reward));
    if (auto std = get(metric::kRewardStd)) absl::StrAppend(&line, " ± ", Number(*std));
  }
  add("kl", metric::kKl);
  add("kl_coef", metric::kKlCoef);
  add("loss", metric::kLoss);
  add("policy_loss", metric::kPolicyLoss);
  add("value_loss", metric::kValueLoss);
  add("entropy", metric::kEntropy);
  add("acc", metric::kRewardAccuracy);
  add("len", metric::kResponseLength);
  if (auto tps = get(metric::kTokensPerSecond))
    absl::StrAppend(&line, " | ", Number(*tps), " tok/s");
  if (auto s = get(metric::kTimeIterationSeconds)) absl::StrAppend(&line, " | ", Number(*s), " s");
  if (!event.checkpoint_path().empty()) absl::StrAppend(&line, " | saved");
  return line;
}

// Opens `path` (truncated) for --metrics-jsonl before any work starts, so a bad path fails
// at once with the system's reason; an empty path leaves `out` closed.
absl::Status OpenMetricsJsonl(const std::string& path, std::ofstream* out) {
  if (path.empty()) return absl::OkStatus();
  errno = 0;
  out->open(path, std::ios::binary | std::ios::trunc);
  if (!*out) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics-jsonl: cannot write ", path, ": ",
                                                   errno != 0 ? std::strerror(errno) : "unknown"));
  }
  return absl::OkStatus();
}

// Prints events until the terminal one; 0 when the job succeeded. With `metrics_out`
// open, also appends each iteration's metrics to it as they arrive.
int FollowEvents(const std::function<bool(v1::JobEvent*)>& next, const std::string& command,
                 std::ofstream& metrics_out) {
  v1::JobEvent event;
  v1::JobState last = v1::JOB_STATE_UNSPECIFIED;
  std::string message;
  while (next(&event)) {
    if (event.state() == v1::JOB_STATE_RUNNING && event.iteration() > 0 &&
        !event.metrics().empty()) {
      std::cout << FormatProgress(event) << std::endl;
      if (metrics_out.is_open()) metrics_out << MetricsJsonLine(event) << std::flush;
    } else {
      std::cout << "job " << event.job_id() << ": " << jobs::JobStateName(event.state())
                << (event.message().empty() ? "" : ": " + event.message()) << std::endl;
    }
    last = event.state();
    message = event.message();
  }
  if (last == v1::JOB_STATE_SUCCEEDED) return 0;
  if (!jobs::IsTerminal(last)) {
    std::cerr << "rlhf " << command << ": error: the event stream ended before the job did\n";
  }
  return 1;
}

}  // namespace rlhf::cli
