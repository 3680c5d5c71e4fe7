#include "services/coordinator/service_clients.h"

#include <algorithm>
#include <future>
#include <limits>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/status_util.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace rlhf::coordinator {
namespace {

std::shared_ptr<grpc::Channel> ServiceChannel(const std::string& address,
                                              const ClientOptions& options) {
  grpc::ChannelArguments args;
  const int max_bytes = static_cast<int>(
      std::min<int64_t>(options.max_message_bytes, std::numeric_limits<int>::max()));
  args.SetMaxReceiveMessageSize(max_bytes);
  args.SetMaxSendMessageSize(max_bytes);
  // gRPC service config: retry only UNAVAILABLE (a peer restarting), a few times; and
  // spread calls over every address the name resolves to, so an endpoint naming several
  // replicas of a stateless service (a headless Kubernetes Service "dns:///reference:50054",
  // or "ipv4:10.0.0.1:50054,10.0.0.2:50054") shares the load among them.
  args.SetServiceConfigJSON(R"({"loadBalancingConfig": [{"round_robin": {}}],
      "methodConfig": [{"name": [{}], "retryPolicy": {
      "maxAttempts": 3, "initialBackoff": "0.2s", "maxBackoff": "2s",
      "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}}]})");
  return rpc::MakeChannel(address, options.security, args);
}

// Splits `prompts` rows [0, n) into `parts` contiguous ranges.
std::vector<std::pair<int, int>> Ranges(int n, int parts) {
  std::vector<std::pair<int, int>> out;
  for (int k = 0, start = 0; k < parts; ++k) {
    const int size = n / parts + (k < n % parts ? 1 : 0);
    if (size > 0) out.emplace_back(start, start + size);
    start += size;
  }
  return out;
}

}  // namespace

absl::StatusOr<ServiceChannels> RemoteChannels(const v1::EndpointsSpec& endpoints,
                                               const ClientOptions& options) {
  if (endpoints.actor().empty() || endpoints.reference().empty() || endpoints.reward().empty() ||
      endpoints.rollout().empty()) {
    return absl::InvalidArgumentError(
        "endpoints: give all of actor, rollout, reference and reward, or none (in-process)");
  }
  ServiceChannels channels;
  channels.actor = ServiceChannel(endpoints.actor(), options);
  channels.actor_address = endpoints.actor();
  channels.reference = ServiceChannel(endpoints.reference(), options);
  channels.reference_address = endpoints.reference();
  channels.reward = ServiceChannel(endpoints.reward(), options);
  channels.reward_address = endpoints.reward();
  for (const std::string& address : endpoints.rollout()) {
    channels.rollout.push_back(ServiceChannel(address, options));
    channels.rollout_addresses.push_back(address);
  }
  return channels;
}

ServiceClients::ServiceClients(ServiceChannels channels, ClientOptions options)
    : channels_(std::move(channels)), options_(options) {
  actor_ = v1::ActorService::NewStub(channels_.actor);
  reference_ = v1::ReferenceService::NewStub(channels_.reference);
  reward_ = v1::RewardService::NewStub(channels_.reward);
  for (const auto& channel : channels_.rollout) {
    rollout_.push_back(v1::RolloutService::NewStub(channel));
  }
  channels_.rollout_addresses.resize(channels_.rollout.size(), "in-process");
}

absl::Status ServiceClients::WaitForConnected() {
  if (channels_.in_process) return absl::OkStatus();
  const auto deadline = std::chrono::system_clock::now() + options_.connect_timeout;
  const double seconds = options_.connect_timeout.count() / 1000.0;
  // Connected is not enough: a restarted role listens before its model is loaded, so wait
  // for its grpc.health.v1 status to be SERVING.
  auto wait = [&](const std::shared_ptr<grpc::Channel>& channel, const char* service,
                  const std::string& address) -> absl::Status {
    auto health = grpc::health::v1::Health::NewStub(channel);
    std::string last = "no answer";
    while (std::chrono::system_clock::now() < deadline) {
      if (cancelled_) return absl::CancelledError("stopped while waiting for the services");
      const auto slice =
          std::min(deadline, std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      if (!channel->WaitForConnected(slice)) continue;
      grpc::ClientContext context;
      context.set_deadline(
          std::min(deadline, std::chrono::system_clock::now() + std::chrono::seconds(2)));
      grpc::health::v1::HealthCheckRequest request;
      grpc::health::v1::HealthCheckResponse response;
      const grpc::Status status = health->Check(&context, request, &response);
      if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        return absl::OkStatus();
      }
      last = status.ok() ? "NOT_SERVING (still loading?)" : status.error_message();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return absl::UnavailableError(absl::StrCat("cannot reach the ", service, " service at ",
                                               address, " within ", seconds, " s (", last, ")"));
  };
  if (auto s = wait(channels_.actor, "actor", channels_.actor_address); !s.ok()) return s;
  for (size_t i = 0; i < channels_.rollout.size(); ++i) {
    if (auto s = wait(channels_.rollout[i], "rollout", channels_.rollout_addresses[i]); !s.ok()) {
      return s;
    }
  }
  if (auto s = wait(channels_.reference, "reference", channels_.reference_address); !s.ok()) {
    return s;
  }
  return wait(channels_.reward, "reward", channels_.reward_address);
}

ServiceClients::Call::Call(const ServiceClients* owner) : owner_(owner) {
  owner_->Prepare(&context);
  std::lock_guard<std::mutex> lock(owner_->calls_mutex_);
  owner_->calls_.insert(&context);
  if (owner_->cancelled_) context.TryCancel();
}

ServiceClients::Call::~Call() {
  std::lock_guard<std::mutex> lock(owner_->calls_mutex_);
  owner_->calls_.erase(&context);
}

void ServiceClients::CancelAll() {
  std::lock_guard<std::mutex> lock(calls_mutex_);
  cancelled_ = true;
  for (grpc::ClientContext* context : calls_) context->TryCancel();
}

void ServiceClients::Prepare(grpc::ClientContext* context) const {
  context->set_deadline(std::chrono::system_clock::now() + options_.rpc_timeout);
  // No wait_for_ready: a role that is down fails the call at once (after the retry policy's
  // few UNAVAILABLE retries), and the job loop recovers through WaitForConnected (SERVING
  // within connect_timeout) or reports the role unreachable, not after rpc_timeout.
}

absl::Status ServiceClients::Check(const grpc::Status& status, const char* service,
                                   const std::string& address, const char* method) const {
  if (status.ok()) return absl::OkStatus();
  absl::Status inner = rpc::FromGrpcStatus(status);
  // CANCELLED that this side did not ask for is a peer that went away mid-call (a broken
  // stream): the role is lost, as with UNAVAILABLE, and the job recovers.
  if (inner.code() == absl::StatusCode::kCancelled && !cancelled_) {
    inner = absl::UnavailableError(absl::StrCat("the call broke off (", inner.message(), ")"));
  }
  return absl::Status(inner.code(), absl::StrCat(service, " service at ", address, ": ", method,
                                                 ": ", inner.message()));
}

absl::Status ServiceClients::Generate(const v1::GenerateRequest& request,
                                      v1::GenerateResponse* response) {
  const int prompts =
      request.prompts().offsets_size() > 0 ? request.prompts().offsets_size() - 1 : 0;
  const auto ranges = Ranges(prompts, static_cast<int>(rollout_.size()));
  if (ranges.size() <= 1) {
    Call call(this);
    return Check(rollout_[0]->Generate(&call.context, request, response), "rollout",
                 channels_.rollout_addresses[0], "Generate");
  }
  // Several replicas: each generates a contiguous share of the prompts, seeded so that
  // completion i of the whole batch still uses seed + i.
  const int n = std::max(1, request.samples_per_prompt());
  std::vector<std::future<absl::StatusOr<v1::GenerateResponse>>> parts;
  for (size_t k = 0; k < ranges.size(); ++k) {
    parts.push_back(
        std::async(std::launch::async, [&, k]() -> absl::StatusOr<v1::GenerateResponse> {
          const auto [begin, end] = ranges[k];
          v1::GenerateRequest part = request;
          v1::TokenBatch* batch = part.mutable_prompts();
          batch->Clear();
          const auto& offsets = request.prompts().offsets();
          for (int64_t j = offsets[begin]; j < offsets[end]; ++j)
            batch->add_ids(request.prompts().ids(j));
          for (int i = begin; i <= end; ++i) batch->add_offsets(offsets[i] - offsets[begin]);
          part.set_seed(request.seed() + static_cast<uint64_t>(begin) * n);
          v1::GenerateResponse out;
          Call call(this);
          auto status = Check(rollout_[k]->Generate(&call.context, part, &out), "rollout",
                              channels_.rollout_addresses[k], "Generate");
          if (!status.ok()) return status;
          return out;
        }));
  }
  response->Clear();
  std::string logprob_bytes;
  int64_t version = std::numeric_limits<int64_t>::max();
  v1::TokenBatch* completions = response->mutable_completions();
  completions->add_offsets(0);
  for (auto& future : parts) {
    auto part = future.get();
    if (!part.ok()) return part.status();
    const auto& c = part->completions();
    for (int64_t id : c.ids()) completions->add_ids(id);
    for (int i = 1; i < c.offsets_size(); ++i) {
      completions->add_offsets(completions->ids_size() - c.ids_size() + c.offsets(i));
    }
    logprob_bytes += part->sampling_logprobs().data();
    for (int reason : part->finish_reasons()) {
      response->add_finish_reasons(static_cast<v1::FinishReason>(reason));
    }
    version = std::min(version, part->policy_version());
  }
  v1::TensorProto* logprobs = response->mutable_sampling_logprobs();
  logprobs->set_dtype(v1::DATA_TYPE_F32);
  logprobs->add_shape(static_cast<int64_t>(logprob_bytes.size() / sizeof(float)));
  logprobs->set_data(std::move(logprob_bytes));
  response->set_policy_version(version);
  return absl::OkStatus();
}

absl::Status ServiceClients::LogProbs(const v1::LogProbsRequest& request,
                                      v1::LogProbsResponse* response) {
  Call call(this);
  return Check(reference_->LogProbs(&call.context, request, response), "reference",
               channels_.reference_address, "LogProbs");
}

absl::Status ServiceClients::Score(const v1::ScoreRequest& request, v1::ScoreResponse* response) {
  Call call(this);
  return Check(reward_->Score(&call.context, request, response), "reward", channels_.reward_address,
               "Score");
}

absl::Status ServiceClients::Evaluate(const v1::EvaluateRequest& request,
                                      v1::EvaluateResponse* response) {
  Call call(this);
  return Check(actor_->Evaluate(&call.context, request, response), "actor", channels_.actor_address,
               "Evaluate");
}

absl::Status ServiceClients::Train(const v1::TrainRequest& request, v1::TrainResponse* response) {
  Call call(this);
  return Check(actor_->Train(&call.context, request, response), "actor", channels_.actor_address,
               "Train");
}

absl::Status ServiceClients::SaveCheckpoint(const std::string& dir, int64_t* version,
                                            bool weights_only, const std::string& dtype) {
  Call call(this);
  v1::CheckpointRequest request;
  request.set_directory(dir);
  request.set_weights_only(weights_only);
  request.set_dtype(dtype);
  v1::CheckpointResponse response;
  auto status = Check(actor_->SaveCheckpoint(&call.context, request, &response), "actor",
                      channels_.actor_address, "SaveCheckpoint");
  if (status.ok() && version != nullptr) *version = response.policy_version();
  return status;
}

absl::Status ServiceClients::LoadCheckpoint(const std::string& dir, int64_t* version) {
  Call call(this);
  v1::CheckpointRequest request;
  request.set_directory(dir);
  v1::CheckpointResponse response;
  auto status = Check(actor_->LoadCheckpoint(&call.context, request, &response), "actor",
                      channels_.actor_address, "LoadCheckpoint");
  if (status.ok() && version != nullptr) *version = response.policy_version();
  return status;
}

namespace {

// The next sync in the rollouts' own half precision when they all hold the same one (the
// first sync, and any after a rollout changed, send float32).
v1::DataType NextWireDtype(v1::DataType held) {
  return held == v1::DATA_TYPE_BF16 || held == v1::DATA_TYPE_F16 ? held : v1::DATA_TYPE_UNSPECIFIED;
}

}  // namespace

absl::StatusOr<SyncStats> ServiceClients::SyncWeights() {
  if (channels_.weight_sync) {
    auto synced = channels_.weight_sync(rollout_dtype_);
    if (!synced.ok()) return synced.status();
    rollout_dtype_ = NextWireDtype(synced->held);
    return synced->stats;
  }
  Call export_call(this);
  grpc::ClientContext& export_context = export_call.context;
  v1::ExportWeightsRequest export_request;
  export_request.set_dtype(rollout_dtype_);
  auto reader = actor_->ExportWeights(&export_context, export_request);

  struct Sink {
    explicit Sink(const ServiceClients* owner) : call(owner) {}
    Call call;
    grpc::ClientContext& context = call.context;
    v1::LoadWeightsResponse response;
    std::unique_ptr<grpc::ClientWriter<v1::WeightChunk>> writer;
  };
  std::vector<std::unique_ptr<Sink>> sinks;
  for (auto& stub : rollout_) {
    auto sink = std::make_unique<Sink>(this);
    sink->writer = stub->LoadWeights(&sink->context, &sink->response);
    sinks.push_back(std::move(sink));
  }
  SyncStats stats;
  v1::WeightChunk chunk;
  bool sinks_ok = true;
  while (reader->Read(&chunk)) {
    stats.bytes += static_cast<int64_t>(chunk.data().size());
    if (chunk.last_chunk_of_tensor()) ++stats.tensors;
    for (auto& sink : sinks) sinks_ok = sink->writer->Write(chunk) && sinks_ok;
    if (!sinks_ok) {
      export_context.TryCancel();
      break;
    }
  }
  const grpc::Status export_status = reader->Finish();
  for (size_t i = 0; i < sinks.size(); ++i) {
    if (!export_status.ok()) sinks[i]->context.TryCancel();
    sinks[i]->writer->WritesDone();
    const grpc::Status load_status = sinks[i]->writer->Finish();
    if (export_status.ok() || !sinks_ok) {
      if (auto s = Check(load_status, "rollout", channels_.rollout_addresses[i], "LoadWeights");
          !s.ok()) {
        return s;
      }
    }
    stats.version = sinks[i]->response.version();
  }
  if (auto s = Check(export_status, "actor", channels_.actor_address, "ExportWeights"); !s.ok()) {
    return s;
  }
  v1::DataType held = sinks.empty() ? v1::DATA_TYPE_UNSPECIFIED : sinks[0]->response.dtype();
  for (const auto& sink : sinks) {
    if (sink->response.dtype() != held) held = v1::DATA_TYPE_UNSPECIFIED;
  }
  rollout_dtype_ = NextWireDtype(held);
  return stats;
}

}  // namespace rlhf::coordinator
