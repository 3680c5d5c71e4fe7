#include "services/coordinator/coordinator.h"

#include <chrono>
#include <utility>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "common/jobs/job_spec.h"
#include "common/jobs/job_state.h"
#include "services/coordinator/job_runner.h"

namespace rlhf::coordinator {
namespace {

google::protobuf::Timestamp Now() { return google::protobuf::util::TimeUtil::GetCurrentTime(); }

bool HasEndpoints(const v1::EndpointsSpec& e) {
  return !e.actor().empty() || !e.reference().empty() || !e.reward().empty() ||
         !e.rollout().empty();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Create(CoordinatorOptions options,
                                                                 prometheus::Registry* registry) {
  // Up to ~30 years: the grace becomes nanoseconds.
  if (!(options.finished_job_metrics_seconds >= 0 && options.finished_job_metrics_seconds <= 1e9)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--finished-job-metrics-seconds must be in [0, 1e9], got ",
                     options.finished_job_metrics_seconds));
  }
  auto store = jobs::JobStore::Open(options.state_db);
  if (!store.ok()) return store.status();
  std::unique_ptr<Coordinator> coordinator(
      new Coordinator(std::move(options), std::move(*store), registry));
  if (coordinator->job_metrics_ != nullptr) {
    if (auto s = coordinator->job_metrics_->CountStoredJobs(*coordinator->store_); !s.ok()) {
      return s;
    }
  }
  return coordinator;
}

Coordinator::Coordinator(CoordinatorOptions options, std::unique_ptr<jobs::JobStore> store,
                         prometheus::Registry* registry)
    : options_(std::move(options)), store_(std::move(store)) {
  if (registry == nullptr) return;
  metrics_ = std::make_unique<TrainingMetrics>(*registry);
  JobMetricsOptions job_metrics;
  job_metrics.finished_series_grace = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(options_.finished_job_metrics_seconds));
  job_metrics_ = std::make_unique<JobMetrics>(*registry, std::move(job_metrics), metrics_.get());
}

Coordinator::~Coordinator() { Stop(); }

void Coordinator::Log(const std::string& line) const {
  if (options_.log) options_.log(line);
}

absl::Status Coordinator::Start() {
  for (const std::string& id : store_->interrupted_job_ids()) {
    auto job = store_->Transition(id, v1::JOB_STATE_QUEUED);
    if (!job.ok()) return job.status();
    if (job_metrics_ != nullptr) job_metrics_->SetState(id, v1::JOB_STATE_QUEUED);
    Log(absl::StrCat("job ", id, ": interrupted by a previous coordinator; requeued",
                     job->checkpoint_path().empty()
                         ? " (no checkpoint: starts over)"
                         : absl::StrCat(" (resumes from ", job->checkpoint_path(), ")")));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (scheduler_.joinable()) return absl::FailedPreconditionError("coordinator already started");
  stopping_ = false;
  scheduler_ = std::thread([this] { SchedulerLoop(); });
  return absl::OkStatus();
}

void Coordinator::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    // In-flight calls of the running job end now, not at the RPC timeout: the job is left
    // RUNNING and resumes from its checkpoint on the next start.
    if (running_clients_ != nullptr) running_clients_->CancelAll();
  }
  wake_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  CloseWatchers();
}

absl::StatusOr<v1::Job> Coordinator::Submit(v1::JobSpec spec, bool validate_only) {
  jobs::ApplyJobSpecDefaults(&spec);
  // Before validation: the checks read the files at the resolved paths, never outside.
  if (auto status = jobs::ConfineJobPaths(options_.roots, &spec); !status.ok()) return status;
  if (auto status = jobs::ValidateJobSpec(spec); !status.ok()) return status;
  if (spec.runtime().num_actor_ranks() > 1 && spec.endpoints().actor().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "runtime.num_actor_ranks: ", spec.runtime().num_actor_ranks(),
        " data-parallel ranks need an actor group: start that many rlhf-actor processes "
        "(--world-size, --rank) and set endpoints.actor to rank 0; in-process runs use 1"));
  }
  if (!IsRunnableAlgorithm(spec.algorithm())) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm: '", spec.algorithm(),
                     "' is part of the job API but not yet runnable by this coordinator"));
  }
  if (HasEndpoints(spec.endpoints())) {
    if (auto channels = RemoteChannels(spec.endpoints(), options_.clients); !channels.ok()) {
      return channels.status();
    }
  } else if (options_.in_process_services == nullptr) {
    return absl::InvalidArgumentError(
        "endpoints: this coordinator runs no services in-process; name the job's actor, "
        "rollout, reference and reward endpoints");
  }
  if (validate_only) {
    v1::Job job;
    *job.mutable_spec() = std::move(spec);
    return job;
  }
  auto job = store_->Create(spec);
  if (!job.ok()) return job.status();
  if (job_metrics_ != nullptr) job_metrics_->Submitted(job->id());
  Log(absl::StrCat("job ", job->id(), ": queued (", spec.algorithm(), ")"));
  wake_.notify_all();
  return job;
}

absl::StatusOr<v1::Job> Coordinator::Get(const std::string& id) { return store_->Get(id); }

absl::StatusOr<jobs::JobPage> Coordinator::List(const std::vector<v1::JobState>& states,
                                                int page_size, const std::string& page_token) {
  return store_->List(states, page_size, page_token);
}

absl::StatusOr<v1::Job> Coordinator::Cancel(const std::string& id, const std::string& reason) {
  auto job = store_->Cancel(id, reason);
  if (!job.ok()) return job;
  if (job_metrics_ != nullptr) job_metrics_->SetState(id, job->state());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (running_id_ == id) {
      cancel_running_ = true;
      if (running_clients_ != nullptr) running_clients_->CancelAll();
    }
  }
  Log(absl::StrCat("job ", id, ": cancelled", reason.empty() ? std::string() : ": " + reason));
  Publish(EventOf(*job));
  return job;
}

v1::JobEvent Coordinator::EventOf(const v1::Job& job) const {
  v1::JobEvent event;
  event.set_job_id(job.id());
  *event.mutable_time() = Now();
  event.set_state(job.state());
  event.set_iteration(job.iteration());
  event.set_total_iterations(job.total_iterations());
  *event.mutable_metrics() = job.latest_metrics();
  event.set_checkpoint_path(job.checkpoint_path());
  event.set_message(job.error_message());
  return event;
}

absl::StatusOr<int64_t> Coordinator::Subscribe(const std::string& id, Listener listener) {
  std::lock_guard<std::mutex> lock(listeners_mutex_);
  auto job = store_->Get(id);
  if (!job.ok()) return job.status();
  listener(EventOf(*job));
  if (jobs::IsTerminal(job->state())) return 0;
  const int64_t handle = next_handle_++;
  listeners_[handle] = {id, std::move(listener)};
  return handle;
}

void Coordinator::Unsubscribe(int64_t handle) {
  std::lock_guard<std::mutex> lock(listeners_mutex_);
  listeners_.erase(handle);
}

void Coordinator::CloseWatchers() {
  std::lock_guard<std::mutex> lock(listeners_mutex_);
  for (auto& [handle, entry] : listeners_) {
    v1::JobEvent event;
    event.set_job_id(entry.first);
    *event.mutable_time() = Now();
    event.set_state(v1::JOB_STATE_UNSPECIFIED);
    event.set_message("coordinator shutting down");
    entry.second(event);
  }
  listeners_.clear();
}

void Coordinator::Publish(const v1::JobEvent& event) {
  std::lock_guard<std::mutex> lock(listeners_mutex_);
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (it->second.first != event.job_id()) {
      ++it;
      continue;
    }
    it->second.second(event);
    it = jobs::IsTerminal(event.state()) ? listeners_.erase(it) : std::next(it);
  }
}

void Coordinator::SchedulerLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (stopping_) return;
    }
    auto next = store_->NextQueued();
    if (!next.ok()) {
      Log(absl::StrCat("cannot read the job queue: ", next.status().message()));
    } else if (next->has_value()) {
      RunOne(**next);
      continue;
    }
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; });
  }
}

void Coordinator::RunOne(const v1::Job& queued) {
  const std::string id = queued.id();
  auto running = store_->Transition(id, v1::JOB_STATE_RUNNING);
  if (!running.ok()) return;  // cancelled meanwhile
  if (job_metrics_ != nullptr) job_metrics_->SetState(id, v1::JOB_STATE_RUNNING);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_id_ = id;
    cancel_running_ = false;
  }
  Publish(EventOf(*running));
  Log(absl::StrCat("job ", id, ": running"));

  RunHooks hooks;
  hooks.cancelled = [this] {
    std::lock_guard<std::mutex> lock(mutex_);
    return cancel_running_ || stopping_;
  };
  hooks.log = [this, &id](const std::string& line) { Log(absl::StrCat("job ", id, ": ", line)); };
  hooks.on_iteration = [this, &id](const IterationReport& report) -> absl::Status {
    if (auto s = store_->RecordProgress(id, report.iteration, report.total_iterations,
                                        report.metrics, report.checkpoint_path);
        !s.ok()) {
      return s;
    }
    if (metrics_ != nullptr) metrics_->Record(id, report.metrics);
    if (job_metrics_ != nullptr) job_metrics_->RecordProgress(id);
    v1::JobEvent event;
    event.set_job_id(id);
    *event.mutable_time() = Now();
    event.set_state(v1::JOB_STATE_RUNNING);
    event.set_iteration(report.iteration);
    event.set_total_iterations(report.total_iterations);
    for (const auto& [name, value] : report.metrics) (*event.mutable_metrics())[name] = value;
    event.set_checkpoint_path(report.checkpoint_path);
    Publish(event);
    return absl::OkStatus();
  };

  absl::Status status;
  const bool remote = HasEndpoints(running->spec().endpoints());
  std::unique_ptr<InProcessServices> local;
  absl::StatusOr<ServiceChannels> channels;
  if (remote) {
    channels = RemoteChannels(running->spec().endpoints(), options_.clients);
  } else if (options_.in_process_services == nullptr) {
    channels = absl::FailedPreconditionError("this coordinator runs no services in-process");
  } else {
    Log(absl::StrCat("job ", id, ": loading the models in-process"));
    auto started = options_.in_process_services(running->spec());
    if (started.ok()) {
      local = std::move(*started);
      channels = local->Channels();
    } else {
      channels = started.status();
    }
  }
  if (channels.ok()) {
    ServiceClients clients(std::move(*channels), options_.clients);
    RunOptions run_options;
    run_options.reset_actor = remote;
    run_options.checkpoint_root = options_.roots.checkpoints;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      running_clients_ = &clients;
      if (stopping_ || cancel_running_) clients.CancelAll();
    }
    status = RunJob(*running, clients, hooks, run_options);
    std::lock_guard<std::mutex> lock(mutex_);
    running_clients_ = nullptr;
  } else {
    status = channels.status();
  }
  local.reset();

  bool interrupted = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    running_id_.clear();
    interrupted = stopping_ && !cancel_running_;
  }
  if (interrupted) {  // left RUNNING: the next Start() resumes it
    Log(absl::StrCat("job ", id, ": interrupted by shutdown; resumes on restart"));
    return;
  }
  auto current = store_->Get(id);
  if (current.ok() && jobs::IsTerminal(current->state())) return;  // cancelled
  absl::StatusOr<v1::Job> done =
      status.ok() ? store_->Transition(id, v1::JOB_STATE_SUCCEEDED)
                  : store_->Transition(id,
                                       status.code() == absl::StatusCode::kCancelled
                                           ? v1::JOB_STATE_CANCELLED
                                           : v1::JOB_STATE_FAILED,
                                       std::string(status.message()));
  if (!done.ok()) {
    Log(absl::StrCat("job ", id, ": cannot record the end: ", done.status().message()));
    return;
  }
  if (job_metrics_ != nullptr) job_metrics_->SetState(id, done->state());
  Log(absl::StrCat("job ", id, ": ", std::string(jobs::JobStateName(done->state())),
                   status.ok() ? "" : absl::StrCat(": ", status.message())));
  Publish(EventOf(*done));
}

}  // namespace rlhf::coordinator
