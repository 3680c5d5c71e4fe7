#pragma once
// The coordinator's job-level Prometheus metrics (deploy/README.md, "Alerts and the Grafana
// dashboard"):
//   rlhf_jobs{state}                                  gauge: jobs by state (queued, running,
//                                                     succeeded, failed, cancelled)
//   rlhf_job_failures_total                           counter: jobs that ended FAILED
//   rlhf_job_running{job_id}                          gauge: 1 while the job runs, then 0
//   rlhf_job_last_progress_timestamp_seconds{job_id}  gauge: unix time the job started
//                                                     running or last finished an iteration
// rlhf_jobs counts what the store holds: CountStoredJobs() reads it at start-up, SetState()
// follows every transition after that. A finished job's per-job series (these and the
// rlhf_training_* of TrainingMetrics) are removed `finished_series_grace` after it ended,
// by a sweeper thread, so that the number of series stays bounded by the jobs of the last
// grace period (prometheus-cpp Family::Remove). Thread-safe.

#include <array>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "common/jobs/job_store.h"
#include "rlhf/v1/job.pb.h"
#include "services/coordinator/training_metrics.h"

namespace rlhf::coordinator {

inline constexpr char kJobStateLabel[] = "state";

struct JobMetricsOptions {
  // How long a finished job's per-job series stay exported (a last scrape, a dashboard
  // look at the end values) before they are removed.
  std::chrono::nanoseconds finished_series_grace = std::chrono::minutes(10);
  // The clock of the progress timestamps and the grace period (tests inject their own).
  std::function<std::chrono::system_clock::time_point()> now = [] {
    return std::chrono::system_clock::now();
  };
  // Sweep expired series from a thread of this object; false: only RemoveExpired() does.
  bool sweeper_thread = true;
};

class JobMetrics {
 public:
  // `training` (may be null) has its series of finished jobs removed along with ours; it
  // must outlive this object.
  JobMetrics(prometheus::Registry& registry, JobMetricsOptions options, TrainingMetrics* training);
  ~JobMetrics();  // joins the sweeper
  JobMetrics(const JobMetrics&) = delete;
  JobMetrics& operator=(const JobMetrics&) = delete;

  // Sets rlhf_jobs from every job in `store` (call once, before any SetState).
  absl::Status CountStoredJobs(jobs::JobStore& store);
  // A new job was stored QUEUED. Ignored when the job is known already: the scheduler (or
  // a cancel) may report its next state before the submitter reports this one.
  void Submitted(const std::string& job_id);
  // The job is now in `state`. Repeating a state changes nothing; a job's terminal state
  // is counted once.
  void SetState(const std::string& job_id, v1::JobState state);
  // The job finished an iteration (or step) now.
  void RecordProgress(const std::string& job_id);
  // Removes the per-job series of jobs that ended more than the grace period ago.
  void RemoveExpired();

 private:
  struct JobSeries {
    prometheus::Gauge* running = nullptr;
    prometheus::Gauge* last_progress = nullptr;
  };
  JobSeries& SeriesLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void CountLocked(v1::JobState state, int delta) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  void SweepLoop();

  const JobMetricsOptions options_;
  TrainingMetrics* const training_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Counter& failures_;
  prometheus::Family<prometheus::Gauge>& running_;
  prometheus::Family<prometheus::Gauge>& last_progress_;
  // rlhf_jobs children by v1::JobState value (1..5; 0, unspecified, unused).
  std::array<prometheus::Gauge*, 6> state_gauges_{};

  std::mutex mutex_;
  std::array<int64_t, 6> counts_ ABSL_GUARDED_BY(mutex_){};
  // Jobs not yet ended, by state; ended jobs waiting for their series' removal, by end time.
  std::map<std::string, v1::JobState> active_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, std::chrono::system_clock::time_point> finished_ ABSL_GUARDED_BY(mutex_);
  std::map<std::string, JobSeries> series_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  std::condition_variable wake_;
  std::thread sweeper_;
};

}  // namespace rlhf::coordinator
