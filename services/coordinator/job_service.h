#pragma once
// JobService (rlhf.v1): SubmitJob, GetJob, ListJobs, CancelJob on the bounded work pool
// (server::RpcExecutor), and WatchJob, a server stream fed by Coordinator::Subscribe that
// ends after the job's terminal event. Until SetCoordinator() calls answer UNAVAILABLE.
// Thread-safe.

#include <memory>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "common/server/rpc_executor.h"
#include "rlhf/v1/job.grpc.pb.h"
#include "services/coordinator/coordinator.h"

namespace rlhf::coordinator {

class JobService final : public v1::JobService::CallbackService {
 public:
  explicit JobService(server::RpcExecutor executor);

  void SetCoordinator(std::shared_ptr<Coordinator> coordinator);

  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* context,
                                      const v1::SubmitJobRequest* request,
                                      v1::SubmitJobResponse* response) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const v1::ListJobsRequest* request,
                                     v1::ListJobsResponse* response) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const v1::CancelJobRequest* request,
                                      v1::Job* response) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* context,
                                                   const v1::WatchJobRequest* request) override;

 private:
  std::shared_ptr<Coordinator> coordinator() const;

  server::RpcExecutor executor_;
  mutable std::mutex mutex_;
  std::shared_ptr<Coordinator> coordinator_;
};

}  // namespace rlhf::coordinator
