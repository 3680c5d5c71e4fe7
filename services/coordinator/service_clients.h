#pragma once
// The coordinator's view of the four model services one job runs against: a stub per
// service, each call with a deadline, errors as absl::Status naming the service and its
// address. The channels are either remote (the job's endpoints, loopback or a cluster)
// or in-process (LocalServices); the job loop cannot tell the difference.
// Thread-safe: calls may run concurrently (the PPO iteration issues three at once).

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/rpc/client_security.h"
#include "rlhf/v1/actor.grpc.pb.h"
#include "rlhf/v1/job.pb.h"
#include "rlhf/v1/rollout.grpc.pb.h"
#include "rlhf/v1/scoring.grpc.pb.h"

namespace rlhf::coordinator {

struct ClientOptions {
  // Deadline of one RPC (a Generate or Train call on a large batch can take minutes).
  std::chrono::milliseconds rpc_timeout{std::chrono::minutes(10)};
  // How long Connect waits for every service to accept a connection.
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(30)};
  int64_t max_message_bytes = int64_t{64} << 20;
  // Bearer token and TLS for every call to a remote service (--service-token-file, ...).
  rpc::ClientSecurity security;
};

// Result of the weight sync: what moved and how long it took.
struct SyncStats {
  int64_t version = 0;
  int64_t bytes = 0;  // as the stream would carry them: the sync's wire dtype
  int64_t tensors = 0;
};

// An in-process weight sync: its stats and the dtype the rollout holds its weights in
// (what LoadWeightsResponse.dtype answers).
struct InProcessSync {
  SyncStats stats;
  v1::DataType held = v1::DATA_TYPE_UNSPECIFIED;
};

struct ServiceChannels {
  std::shared_ptr<grpc::Channel> actor, reference, reward;
  std::vector<std::shared_ptr<grpc::Channel>> rollout;
  // Addresses for messages ("in-process" for local channels).
  std::string actor_address = "in-process", reference_address = "in-process",
              reward_address = "in-process";
  std::vector<std::string> rollout_addresses;
  // In-process channels are always connected (and have no connectivity state to watch).
  bool in_process = false;
  // In-process services may also sync weights without the ExportWeights -> LoadWeights
  // stream: the rollout copies the actor's weights directly (one copy, converting dtype
  // and device on the way), with the stream's checks and outcome. Given the dtype the
  // stream would use (the DataType negotiation stays the same).
  std::function<absl::StatusOr<InProcessSync>(v1::DataType wire_dtype)> weight_sync;
};

// The four services running inside this process for a job without endpoints (`rlhf
// local`, or a coordinator that hosts them). The coordinator library does not build them:
// whoever creates the Coordinator hands it a factory (services/local). The channels stay
// valid while the object lives.
class InProcessServices {
 public:
  virtual ~InProcessServices() = default;
  virtual ServiceChannels Channels() = 0;
};
using InProcessServicesFactory =
    std::function<absl::StatusOr<std::unique_ptr<InProcessServices>>(const v1::JobSpec& spec)>;

// Channels to the job's endpoints (every one must be set). Does not connect yet.
absl::StatusOr<ServiceChannels> RemoteChannels(const v1::EndpointsSpec& endpoints,
                                               const ClientOptions& options);

class ServiceClients {
 public:
  ServiceClients(ServiceChannels channels, ClientOptions options);

  // Waits up to connect_timeout for every service to be connected and SERVING (health);
  // Unavailable names the service and the address that could not be reached.
  absl::Status WaitForConnected();

  absl::Status Generate(const v1::GenerateRequest& request, v1::GenerateResponse* response);
  absl::Status LogProbs(const v1::LogProbsRequest& request, v1::LogProbsResponse* response);
  absl::Status Score(const v1::ScoreRequest& request, v1::ScoreResponse* response);
  absl::Status Evaluate(const v1::EvaluateRequest& request, v1::EvaluateResponse* response);
  absl::Status Train(const v1::TrainRequest& request, v1::TrainResponse* response);
  // weights_only: export the policy alone (Hugging Face layout, no value head/optimizer).
  // weights_only: a Hugging Face export, in `dtype` when given.
  absl::Status SaveCheckpoint(const std::string& dir, int64_t* version, bool weights_only = false,
                              const std::string& dtype = "");
  absl::Status LoadCheckpoint(const std::string& dir, int64_t* version);

  // actor.ExportWeights streamed into every rollout replica's LoadWeights, chunk by chunk
  // (one batched stream each way; nothing is buffered whole in the coordinator), float32
  // or, once every rollout reported holding bf16/fp16, in that dtype (half the bytes).
  absl::StatusOr<SyncStats> SyncWeights();

  // Cancels every call in flight and every later one (CANCELLED), and stops
  // WaitForConnected: how a coordinator shutting down or cancelling the job lets go at once.
  void CancelAll();

 private:
  // One call's context: prepared (deadline), and known to CancelAll while it lives.
  class Call {
   public:
    explicit Call(const ServiceClients* owner);
    ~Call();
    grpc::ClientContext context;

   private:
    const ServiceClients* owner_;
  };

  void Prepare(grpc::ClientContext* context) const;
  absl::Status Check(const grpc::Status& status, const char* service, const std::string& address,
                     const char* method) const;

  ServiceChannels channels_;
  ClientOptions options_;
  std::unique_ptr<v1::ActorService::Stub> actor_;
  std::unique_ptr<v1::ReferenceService::Stub> reference_;
  std::unique_ptr<v1::RewardService::Stub> reward_;
  std::vector<std::unique_ptr<v1::RolloutService::Stub>> rollout_;
  mutable std::mutex calls_mutex_;
  mutable std::set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(calls_mutex_);
  std::atomic<bool> cancelled_{false};
  // The dtype every rollout reported holding at the last sync (BF16/F16: the next sync
  // sends that, half the bytes); unspecified: float32.
  v1::DataType rollout_dtype_ = v1::DATA_TYPE_UNSPECIFIED;
};

}  // namespace rlhf::coordinator
