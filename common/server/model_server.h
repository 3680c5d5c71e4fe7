#pragma once
// The main() every model-serving binary (rlhf-reference, -rollout, -reward, -actor)
// shares: parse the binary's flags plus the ServerFlags, start the ServerRunner with the
// one service reporting NOT_SERVING, load the model, report SERVING, wait for SIGTERM or
// SIGINT, drain. Not thread-safe (main() only).

#include <functional>
#include <string>

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include "absl/status/status.h"
#include "common/cli/flags.h"
#include "common/server/rpc_executor.h"

namespace rlhf::server {

struct ModelServerSpec {
  std::string program;       // "rlhf-reference": names the binary in every message
  std::string service_name;  // "rlhf.v1.ReferenceService"
  // Optional: checks (and completes) the parsed flags before the server starts.
  std::function<absl::Status()> check_flags = nullptr;
  // Builds the service, not yet loaded, on its executor. The caller owns it; it must
  // outlive the RunModelServer call.
  std::function<grpc::Service*(RpcExecutor)> make_service;
  // What the "listening" line says is being loaded, e.g. "loading /models/x".
  std::function<std::string()> describe_load;
  // Loads the model into the service (while health reports NOT_SERVING).
  std::function<absl::Status()> load;
  // Optional: gets the process's metrics registry before load() (for metrics beyond the
  // per-RPC ones, e.g. the coordinator's training metrics).
  std::function<void(prometheus::Registry&)> attach_metrics = nullptr;
  // Optional: runs after SIGTERM/SIGINT, before in-flight calls drain (stop background
  // work, end open streams).
  std::function<void()> before_drain = nullptr;
};

// Call after BlockTerminationSignals(), with `flags` holding the binary's own flags
// (the ServerFlags are registered after them). Returns main()'s exit status: 0 after
// --help or a drained shutdown; on an error, printed as "<program>: error: <message>",
// 2 for InvalidArgument and 1 otherwise.
int RunModelServer(const ModelServerSpec& spec, cli::FlagSet& flags, int argc, char** argv);

}  // namespace rlhf::server
