#include "common/server/server_runner.h"

#include <algorithm>
#include <exception>
#include <limits>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "common/server/server_credentials.h"

namespace rlhf::server {

ServerRunner::ServerRunner(ServerOptions options)
    : options_(std::move(options)),
      registry_(std::make_shared<prometheus::Registry>()),
      metrics_(*registry_),
      pool_(options_.worker_threads, options_.queue_capacity) {}

ServerRunner::~ServerRunner() { Shutdown(); }

RpcExecutor ServerRunner::Executor(std::string service_name) {
  service_names_.push_back(service_name);
  return RpcExecutor(std::move(service_name), &pool_, &metrics_, options_.max_message_bytes,
                     &auth_);
}

void ServerRunner::AddService(grpc::Service* service) { services_.push_back(service); }

absl::Status ServerRunner::Start() {
  if (server_ != nullptr) return absl::FailedPreconditionError("server already started");
  auto credentials = MakeServerCredentials(options_);
  if (!credentials.ok()) return credentials.status();
  if (!options_.auth_token_file.empty()) {
    auto auth = CallerAuth::FromFile(options_.auth_token_file);
    if (!auth.ok()) return auth.status();
    auth_ = *std::move(auth);
  }
  if (!options_.metrics_address.empty()) {
    try {
      // prometheus-cpp pull: one Exposer per process serving the process's Registry.
      exposer_ = std::make_unique<prometheus::Exposer>(options_.metrics_address);
      exposer_->RegisterCollectable(registry_);
      const std::vector<int> ports = exposer_->GetListeningPorts();
      metrics_port_ = ports.empty() ? 0 : ports.front();
    } catch (const std::exception& e) {
      return absl::UnavailableError(
          absl::StrCat("cannot serve metrics on ", options_.metrics_address, ": ", e.what()));
    }
  }

  // Both are process-wide switches read by the next ServerBuilder (grpc docs:
  // health_check_service_interface.h, proto_server_reflection_plugin.h).
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen_address, *credentials, &port_);
  const int max_bytes = static_cast<int>(
      std::min<int64_t>(options_.max_message_bytes, std::numeric_limits<int>::max()));
  builder.SetMaxReceiveMessageSize(max_bytes);
  builder.SetMaxSendMessageSize(max_bytes);
  for (grpc::Service* service : services_) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen for gRPC on ", options_.listen_address,
        options_.tls_cert_file.empty() ? "" : " (or --tls-cert/--tls-key is not a valid pair)"));
  }
  SetServing(false);
  return absl::OkStatus();
}

void ServerRunner::SetServing(bool serving) {
  if (server_ == nullptr) return;
  if (auto* health = server_->GetHealthCheckService(); health != nullptr) {
    health->SetServingStatus(serving);  // "" (the whole server)
    for (const std::string& name : service_names_) health->SetServingStatus(name, serving);
  }
}

std::string ServerRunner::address() const {
  const std::string& listen = options_.listen_address;
  const size_t colon = listen.rfind(':');
  std::string host = colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host.empty() || host == "0.0.0.0" || host == "[::]") host = "127.0.0.1";
  return absl::StrCat(host, ":", port_);
}

std::shared_ptr<grpc::Channel> ServerRunner::InProcessChannel() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<int64_t>(options_.max_message_bytes, std::numeric_limits<int>::max())));
  args.SetMaxSendMessageSize(static_cast<int>(
      std::min<int64_t>(options_.max_message_bytes, std::numeric_limits<int>::max())));
  return server_->InProcessChannel(args);
}

void ServerRunner::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (server_ != nullptr) {
    SetServing(false);
    // Stops accepting at once; in-flight calls may finish until the deadline, then are
    // cancelled (grpc::Server::Shutdown docs). Returns when every reactor is done.
    server_->Shutdown(std::chrono::system_clock::now() + options_.drain_timeout);
    server_->Wait();
  }
  pool_.Stop();
  // Metrics stay scrapable during the drain. civetweb's mg_stop waits out its listener's
  // poll quantum, so this takes up to ~2 s.
  exposer_.reset();
}

}  // namespace rlhf::server
