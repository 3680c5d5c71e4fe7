#include "services/coordinator/job_metrics.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "common/jobs/job_state.h"

namespace rlhf::coordinator {
namespace {

constexpr v1::JobState kStates[] = {v1::JOB_STATE_QUEUED, v1::JOB_STATE_RUNNING,
                                    v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED,
                                    v1::JOB_STATE_CANCELLED};

bool IsCounted(v1::JobState state) {
  return std::find(std::begin(kStates), std::end(kStates), state) != std::end(kStates);
}

double UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

JobMetrics::JobMetrics(prometheus::Registry& registry, JobMetricsOptions options,
                       TrainingMetrics* training)
    : options_(std::move(options)),
      training_(training),
      jobs_(prometheus::BuildGauge()
                .Name("rlhf_jobs")
                .Help("Jobs in the coordinator's store by state")
                .Register(registry)),
      failures_(prometheus::BuildCounter()
                    .Name("rlhf_job_failures_total")
                    .Help("Jobs that ended FAILED since this coordinator started")
                    .Register(registry)
                    .Add({})),
      running_(prometheus::BuildGauge()
                   .Name("rlhf_job_running")
                   .Help("1 while the job runs, 0 once it was requeued or ended")
                   .Register(registry)),
      last_progress_(prometheus::BuildGauge()
                         .Name("rlhf_job_last_progress_timestamp_seconds")
                         .Help("Unix time the job started running or last finished an "
                               "iteration (step)")
                         .Register(registry)) {
  for (v1::JobState state : kStates) {
    const std::string name = absl::AsciiStrToLower(std::string(jobs::JobStateName(state)));
    state_gauges_[state] = &jobs_.Add({{kJobStateLabel, name}});
  }
  if (options_.sweeper_thread) sweeper_ = std::thread([this] { SweepLoop(); });
}

JobMetrics::~JobMetrics() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

absl::Status JobMetrics::CountStoredJobs(jobs::JobStore& store) {
  std::string token;
  do {
    auto page = store.List({}, jobs::kMaxListPageSize, token);
    if (!page.ok()) return page.status();
    std::lock_guard<std::mutex> lock(mutex_);
    for (const v1::Job& job : page->jobs) {
      CountLocked(job.state(), +1);
      if (!jobs::IsTerminal(job.state())) active_[job.id()] = job.state();
    }
    token = page->next_page_token;
  } while (!token.empty());
  return absl::OkStatus();
}

void JobMetrics::CountLocked(v1::JobState state, int delta) {
  if (!IsCounted(state)) return;
  counts_[state] += delta;
  state_gauges_[state]->Set(static_cast<double>(counts_[state]));
}

JobMetrics::JobSeries& JobMetrics::SeriesLocked(const std::string& job_id) {
  JobSeries& series = series_[job_id];
  if (series.running == nullptr) {
    const prometheus::Labels labels = {{kJobIdLabel, job_id}};
    series.running = &running_.Add(labels);
    series.last_progress = &last_progress_.Add(labels);
  }
  return series;
}

void JobMetrics::Submitted(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (active_.count(job_id) != 0 || finished_.count(job_id) != 0) return;
  active_[job_id] = v1::JOB_STATE_QUEUED;
  CountLocked(v1::JOB_STATE_QUEUED, +1);
}

void JobMetrics::SetState(const std::string& job_id, v1::JobState state) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_.count(job_id) != 0) return;  // terminal states never change
  auto active = active_.find(job_id);
  if (active != active_.end()) {
    if (active->second == state) return;
    CountLocked(active->second, -1);
  }
  CountLocked(state, +1);
  auto series = series_.find(job_id);
  if (jobs::IsTerminal(state)) {
    if (active != active_.end()) active_.erase(active);
    finished_[job_id] = options_.now();
    if (state == v1::JOB_STATE_FAILED) failures_.Increment();
    if (series != series_.end()) series->second.running->Set(0);
    return;
  }
  active_[job_id] = state;
  if (state == v1::JOB_STATE_RUNNING) {
    JobSeries& running = SeriesLocked(job_id);
    running.running->Set(1);
    running.last_progress->Set(UnixSeconds(options_.now()));
  } else if (series != series_.end()) {  // requeued: no series for jobs that never ran
    series->second.running->Set(0);
  }
}

void JobMetrics::RecordProgress(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_.count(job_id) != 0) return;
  SeriesLocked(job_id).last_progress->Set(UnixSeconds(options_.now()));
}

void JobMetrics::RemoveExpired() {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = options_.now();
  for (auto it = finished_.begin(); it != finished_.end();) {
    if (now - it->second < options_.finished_series_grace) {
      ++it;
      continue;
    }
    if (auto series = series_.find(it->first); series != series_.end()) {
      running_.Remove(series->second.running);
      last_progress_.Remove(series->second.last_progress);
      series_.erase(series);
    }
    if (training_ != nullptr) training_->RemoveJob(it->first);
    it = finished_.erase(it);
  }
}

void JobMetrics::SweepLoop() {
  // Series outlive their grace by at most one tick.
  const auto tick = std::clamp<std::chrono::nanoseconds>(
      options_.finished_series_grace, std::chrono::milliseconds(10), std::chrono::seconds(1));
  std::unique_lock<std::mutex> lock(mutex_);
  while (
      !wake_.wait_for(lock, tick, [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_; })) {
    lock.unlock();
    RemoveExpired();
    lock.lock();
  }
}

}  // namespace rlhf::coordinator
