#include "services/coordinator/job_service.h"

#include <deque>
#include <utility>

#include "common/jobs/job_state.h"
#include "common/rpc/status_util.h"

namespace rlhf::coordinator {
namespace {

constexpr char kNotReady[] = "the coordinator is still opening its job store";

// Streams a job's events: writes one at a time from a queue the coordinator's listener
// fills; finishes after a terminal event, on cancellation, or when the coordinator stops.
class WatchReactor : public grpc::ServerWriteReactor<v1::JobEvent> {
 public:
  WatchReactor(std::shared_ptr<Coordinator> coordinator, const server::RpcExecutor& executor)
      : coordinator_(std::move(coordinator)),
        executor_(executor),
        start_(server::RpcExecutor::Clock::now()) {}

  // Called before WatchJob returns the reactor, so no reaction runs concurrently with it.
  void Begin(const grpc::ServerContextBase& context, const std::string& id) {
    if (grpc::Status denied = executor_.Authenticate(context); !denied.ok()) {
      std::lock_guard<std::mutex> lock(mutex_);
      FinishLocked(denied);
      return;
    }
    if (coordinator_ == nullptr) {
      std::lock_guard<std::mutex> lock(mutex_);
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, kNotReady));
      return;
    }
    auto handle = coordinator_->Subscribe(id, [this](const v1::JobEvent& event) { Push(event); });
    std::lock_guard<std::mutex> lock(mutex_);
    if (!handle.ok()) {
      FinishLocked(rpc::ToGrpcStatus(handle.status()));
      return;
    }
    handle_ = *handle;
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "the client went away"));
      return;
    }
    queue_.pop_front();
    WriteNextLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mutex_);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
  }

  void OnDone() override {
    int64_t handle;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      handle = handle_;
    }
    if (handle > 0) coordinator_->Unsubscribe(handle);
    executor_.Record("WatchJob", code_, start_);
    delete this;
  }

 private:
  void Push(const v1::JobEvent& event) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (finished_ || ended_) return;
    queue_.push_back(event);
    if (event.state() == v1::JOB_STATE_UNSPECIFIED || jobs::IsTerminal(event.state())) {
      ended_ = true;
    }
    if (!writing_) WriteNextLocked();
  }

  void WriteNextLocked() {
    if (finished_) return;
    if (queue_.empty()) {
      if (ended_) FinishLocked(grpc::Status::OK);
      return;
    }
    if (queue_.front().state() == v1::JOB_STATE_UNSPECIFIED) {  // coordinator stopping
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, queue_.front().message()));
      return;
    }
    writing_ = true;
    StartWrite(&queue_.front());
  }

  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    code_ = status.error_code();
    Finish(status);
  }

  std::shared_ptr<Coordinator> coordinator_;
  server::RpcExecutor executor_;
  server::RpcExecutor::Clock::time_point start_;
  std::mutex mutex_;
  std::deque<v1::JobEvent> queue_;  // front() is being written while writing_
  bool writing_ = false, ended_ = false, finished_ = false;
  int64_t handle_ = 0;
  grpc::StatusCode code_ = grpc::StatusCode::OK;
};

}  // namespace

JobService::JobService(server::RpcExecutor executor) : executor_(std::move(executor)) {}

void JobService::SetCoordinator(std::shared_ptr<Coordinator> coordinator) {
  std::lock_guard<std::mutex> lock(mutex_);
  coordinator_ = std::move(coordinator);
}

std::shared_ptr<Coordinator> JobService::coordinator() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return coordinator_;
}

grpc::ServerUnaryReactor* JobService::SubmitJob(grpc::CallbackServerContext* context,
                                                const v1::SubmitJobRequest* request,
                                                v1::SubmitJobResponse* response) {
  return executor_.Unary(context, "SubmitJob", response, [=, this]() -> absl::Status {
    auto c = coordinator();
    if (c == nullptr) return absl::UnavailableError(kNotReady);
    auto job = c->Submit(request->spec(), request->validate_only());
    if (!job.ok()) return job.status();
    *response->mutable_job() = std::move(*job);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* JobService::GetJob(grpc::CallbackServerContext* context,
                                             const v1::GetJobRequest* request, v1::Job* response) {
  return executor_.Unary(context, "GetJob", response, [=, this]() -> absl::Status {
    auto c = coordinator();
    if (c == nullptr) return absl::UnavailableError(kNotReady);
    auto job = c->Get(request->id());
    if (!job.ok()) return job.status();
    *response = std::move(*job);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* JobService::ListJobs(grpc::CallbackServerContext* context,
                                               const v1::ListJobsRequest* request,
                                               v1::ListJobsResponse* response) {
  return executor_.Unary(context, "ListJobs", response, [=, this]() -> absl::Status {
    auto c = coordinator();
    if (c == nullptr) return absl::UnavailableError(kNotReady);
    std::vector<v1::JobState> states;
    for (int s : request->states()) states.push_back(static_cast<v1::JobState>(s));
    auto page = c->List(states, request->page_size(), request->page_token());
    if (!page.ok()) return page.status();
    for (v1::Job& job : page->jobs) *response->add_jobs() = std::move(job);
    response->set_next_page_token(page->next_page_token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* JobService::CancelJob(grpc::CallbackServerContext* context,
                                                const v1::CancelJobRequest* request,
                                                v1::Job* response) {
  return executor_.Unary(context, "CancelJob", response, [=, this]() -> absl::Status {
    auto c = coordinator();
    if (c == nullptr) return absl::UnavailableError(kNotReady);
    auto job = c->Cancel(request->id(), request->reason());
    if (!job.ok()) return job.status();
    *response = std::move(*job);
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::JobEvent>* JobService::WatchJob(grpc::CallbackServerContext* context,
                                                             const v1::WatchJobRequest* request) {
  auto* reactor = new WatchReactor(coordinator(), executor_);
  reactor->Begin(*context, request->id());
  return reactor;
}

}  // namespace rlhf::coordinator
