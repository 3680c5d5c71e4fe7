#pragma once
// ServerRunner: the scaffolding every service binary shares (DESIGN.md "Every server"):
// a grpc::Server on ServerOptions' address with grpc.health.v1 (NOT_SERVING until the
// binary calls SetServing(true) after loading its model) and server reflection, a
// Prometheus /metrics endpoint (one Registry and one Exposer per process), per-RPC
// metrics, the bounded WorkPool handlers run their work on, and a graceful Shutdown
// (stop accepting, drain in-flight calls up to drain_timeout, stop the pool).
//
// Usage: construct, AddService(...) each service (which keeps pointers to the runner's
// pool and metrics via Executor()), Start(), SetServing(true) when ready, Shutdown().
// Services must outlive Shutdown(). Start/AddService/Shutdown: one thread; the rest are
// thread-safe.

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include "absl/status/status.h"
#include "common/server/caller_auth.h"
#include "common/server/rpc_executor.h"
#include "common/server/rpc_metrics.h"
#include "common/server/server_options.h"
#include "common/server/work_pool.h"

namespace rlhf::server {

class ServerRunner {
 public:
  explicit ServerRunner(ServerOptions options);
  ~ServerRunner();  // Shutdown()
  ServerRunner(const ServerRunner&) = delete;
  ServerRunner& operator=(const ServerRunner&) = delete;

  // A handler runtime for one service (its full name, e.g. "rlhf.v1.ReferenceService").
  RpcExecutor Executor(std::string service_name);

  // Registers a service; before Start(). Not owned.
  void AddService(grpc::Service* service);

  // Reads the token and TLS files, binds the gRPC port and the metrics endpoint and
  // starts serving; health reports NOT_SERVING. Errors name the flag or file that is
  // wrong, or the address that could not be bound.
  absl::Status Start();

  // Health status of every service (and of ""), as grpc.health.v1 reports it.
  void SetServing(bool serving);

  // The bound ports (after Start); metrics_port() is 0 when metrics are disabled.
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  std::string address() const;

  // A channel to this server that bypasses the network (for `rlhf local` and tests).
  std::shared_ptr<grpc::Channel> InProcessChannel();

  prometheus::Registry& registry() { return *registry_; }
  const ServerOptions& options() const { return options_; }

  // Stops accepting, waits up to drain_timeout for in-flight calls (then cancels them),
  // and stops the work pool. Idempotent.
  void Shutdown();

 private:
  ServerOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  RpcMetrics metrics_;
  WorkPool pool_;
  CallerAuth auth_;                         // loaded by Start(); the executors point at it
  std::vector<std::string> service_names_;  // from Executor(): health answers for each
  std::vector<grpc::Service*> services_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  int metrics_port_ = 0;
  bool shut_down_ = false;
};

}  // namespace rlhf::server
