#pragma once
// The coordinator: the job queue in SQLite (common/jobs JobStore), one scheduler thread
// that runs jobs one at a time in submission order (RunJob, against the job's endpoints
// or, with none, the services options.in_process_services starts), and the events
// WatchJob streams.
//
// A coordinator that died or was stopped mid-job finds the job RUNNING when it opens the
// store again: Start() requeues it, and it resumes after its last checkpoint. Stop()
// interrupts the running job at its next stage and leaves it RUNNING for that resume.
// Thread-safe.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/jobs/job_paths.h"
#include "common/jobs/job_store.h"
#include "rlhf/v1/job.pb.h"
#include "services/coordinator/job_metrics.h"
#include "services/coordinator/service_clients.h"
#include "services/coordinator/training_metrics.h"

namespace rlhf::coordinator {

struct CoordinatorOptions {
  std::string state_db = "rlhf-coordinator.sqlite";
  ClientOptions clients;
  // Progress lines ("job X: resuming ...") go here; default: none.
  std::function<void(const std::string&)> log = nullptr;
  // Runs the services of jobs without endpoints in this process; null: such jobs are
  // refused at submission.
  InProcessServicesFactory in_process_services = nullptr;
  // Where a job's paths may point (--data-root, --checkpoint-root); empty: anywhere. A
  // job without checkpoint.dir checkpoints to <checkpoints root>/<job id>.
  jobs::PathRoots roots;
  // How long a finished job's per-job series stay on /metrics (JobMetrics), in seconds.
  double finished_job_metrics_seconds = 600;
};

class Coordinator {
 public:
  using Listener = std::function<void(const v1::JobEvent&)>;

  // Opens (or creates) the store. `registry` may be null (no Prometheus metrics).
  static absl::StatusOr<std::unique_ptr<Coordinator>> Create(CoordinatorOptions options,
                                                             prometheus::Registry* registry);
  ~Coordinator();  // Stop()

  // Requeues interrupted jobs, then starts the scheduler thread.
  absl::Status Start();
  // Interrupts the running job (left RUNNING, to resume on the next Start) and joins.
  void Stop();

  // Applies defaults and validates (every bad field: InvalidArgument with its path);
  // stores the job unless validate_only.
  absl::StatusOr<v1::Job> Submit(v1::JobSpec spec, bool validate_only);
  absl::StatusOr<v1::Job> Get(const std::string& id);
  absl::StatusOr<jobs::JobPage> List(const std::vector<v1::JobState>& states, int page_size,
                                     const std::string& page_token);
  absl::StatusOr<v1::Job> Cancel(const std::string& id, const std::string& reason);

  // Calls `listener` with the job's current state, then with every event until the job
  // ends (the last event has a terminal state). Returns a handle for Unsubscribe.
  absl::StatusOr<int64_t> Subscribe(const std::string& id, Listener listener);
  // After it returns, the listener is never called again.
  void Unsubscribe(int64_t handle);
  // Wakes every watcher with a final event (coordinator shutting down).
  void CloseWatchers();

 private:
  Coordinator(CoordinatorOptions options, std::unique_ptr<jobs::JobStore> store,
              prometheus::Registry* registry);
  void SchedulerLoop();
  void RunOne(const v1::Job& job);
  void Publish(const v1::JobEvent& event);
  void Log(const std::string& line) const;
  v1::JobEvent EventOf(const v1::Job& job) const;

  CoordinatorOptions options_;
  std::unique_ptr<jobs::JobStore> store_;
  std::unique_ptr<TrainingMetrics> metrics_;
  std::unique_ptr<JobMetrics> job_metrics_;  // after metrics_: removes its series

  std::mutex mutex_;  // guards the fields below
  std::condition_variable wake_;
  bool stopping_ = false;
  std::string running_id_;
  bool cancel_running_ = false;
  ServiceClients* running_clients_ = nullptr;  // the running job's, while it runs
  std::thread scheduler_;

  std::mutex listeners_mutex_;
  int64_t next_handle_ = 1;
  std::map<int64_t, std::pair<std::string, Listener>> listeners_;
};

}  // namespace rlhf::coordinator
