#include "services/cli/local_command.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include "absl/strings/str_cat.h"
#include "common/jobs/job_spec.h"
#include "common/jobs/job_state.h"
#include "common/jobs/metric_names.h"
#include "common/model/device_flags.h"
#include "services/cli/job_events.h"
#include "services/coordinator/coordinator.h"
#include "services/local/local_services.h"

namespace rlhf::cli {

int RunLocal(const std::vector<std::string>& args) {
  std::string state_db, metrics_listen, metrics_jsonl;
  FlagSet flags(
      "rlhf local",
      "Runs JOB.json with every service in this process (in-process gRPC channels):\n"
      "a progress line per iteration, then a summary.\nusage: rlhf local JOB.json [flags]");
  flags.String("state-db", &state_db,
               "SQLite job store (default: a temporary file, removed at the end)");
  flags.String("metrics-listen", &metrics_listen,
               "serve Prometheus /metrics on this host:port while the job runs");
  flags.String("metrics-jsonl", &metrics_jsonl,
               "write each iteration's metrics to this file, one JSON object per line");
  model::DeviceFlags device;
  device.Register(flags);
  if (int rc = ParseFlags(flags, args, "local", 1); rc >= 0) return rc;
  std::ofstream metrics_out;
  if (auto s = OpenMetricsJsonl(metrics_jsonl, &metrics_out); !s.ok()) return Fail("local", s);
  const std::string path = flags.positional()[0];
  auto spec = jobs::LoadJobSpecFile(path);
  if (!spec.ok()) return Fail("local", spec.status());
  // The device is checked before anything starts (CUDA where there is none: exit 2).
  if (auto load = device.Resolve(spec->models().policy_dir()); !load.ok()) {
    return Fail("local", load.status());
  }
  if (!spec->endpoints().actor().empty() || spec->endpoints().rollout_size() > 0) {
    return Fail("local", absl::InvalidArgumentError(
                             path + ": endpoints: `rlhf local` runs every service in-process; "
                                    "remove endpoints or use `rlhf submit`"));
  }

  bool temporary = state_db.empty();
  if (temporary) {
    state_db =
        (std::filesystem::temp_directory_path() / absl::StrCat("rlhf-local-", getpid(), ".sqlite"))
            .string();
  }
  auto registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  if (!metrics_listen.empty()) {
    try {
      exposer = std::make_unique<prometheus::Exposer>(metrics_listen);
      exposer->RegisterCollectable(registry);
    } catch (const std::exception& e) {
      return Fail("local", absl::UnavailableError(absl::StrCat("cannot serve metrics on ",
                                                               metrics_listen, ": ", e.what())));
    }
  }
  coordinator::CoordinatorOptions options;
  options.state_db = state_db;
  options.in_process_services = coordinator::LocalServicesFactory(device);
  options.log = [](const std::string& line) { std::cerr << "rlhf local: " << line << "\n"; };
  auto created = coordinator::Coordinator::Create(options, registry.get());
  if (!created.ok()) return Fail("local", created.status());
  std::unique_ptr<coordinator::Coordinator> c = std::move(*created);
  auto job = c->Submit(*spec, /*validate_only=*/false);
  if (!job.ok()) return Fail("local", job.status());
  std::cout << "job " << job->id() << ": " << spec->algorithm() << " on "
            << spec->models().policy_dir() << ", " << spec->data().train_path() << std::endl;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<v1::JobEvent> events;
  auto handle = c->Subscribe(job->id(), [&](const v1::JobEvent& event) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(event);
    cv.notify_all();
  });
  if (!handle.ok()) return Fail("local", handle.status());
  const auto start = std::chrono::steady_clock::now();
  if (auto s = c->Start(); !s.ok()) return Fail("local", s);
  bool done = false;
  const int rc = FollowEvents(
      [&](v1::JobEvent* e) {
        if (done) return false;
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return !events.empty(); });
        *e = events.front();
        events.pop_front();
        done = e->state() == v1::JOB_STATE_UNSPECIFIED || jobs::IsTerminal(e->state());
        return true;
      },
      "local", metrics_out);
  c->Stop();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  auto final_job = c->Get(job->id());
  if (final_job.ok()) {
    std::cout << "\nsummary: " << jobs::JobStateName(final_job->state()) << " after "
              << final_job->iteration() << "/" << final_job->total_iterations() << " iterations in "
              << Number(seconds) << " s\n";
    if (!final_job->checkpoint_path().empty()) {
      std::cout << "  last checkpoint: " << final_job->checkpoint_path() << "\n";
    }
    if (final_job->state() == v1::JOB_STATE_SUCCEEDED) {
      const std::string& dir = final_job->spec().checkpoint().dir();
      std::cout << "  final policy:    "
                << (std::filesystem::absolute(dir.empty() ? "checkpoints/" + job->id() : dir) /
                    "final")
                       .string()
                << "\n";
    }
    std::map<std::string, double> sorted(final_job->latest_metrics().begin(),
                                         final_job->latest_metrics().end());
    for (const char* name : {metric::kRewardMean, metric::kKl, metric::kLoss, metric::kPolicyLoss,
                             metric::kValueLoss, metric::kEntropy, metric::kRewardAccuracy,
                             metric::kResponseLength, metric::kTokensPerSecond}) {
      if (auto it = sorted.find(name); it != sorted.end()) {
        std::cout << "  " << std::left << std::setw(19) << name << Number(it->second) << "\n";
      }
    }
  }
  c.reset();
  if (temporary) {
    std::error_code ignored;
    for (const char* suffix : {"", "-wal", "-shm"}) {
      std::filesystem::remove(state_db + suffix, ignored);
    }
  }
  return rc;
}

}  // namespace rlhf::cli
