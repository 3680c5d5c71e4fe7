#include "common/server/model_server.h"

#include <iostream>
#include <vector>

#include "common/server/server_flags.h"
#include "common/server/server_runner.h"
#include "common/server/termination_signal.h"

namespace rlhf::server {
namespace {

int Fail(const std::string& program, const absl::Status& status) {
  std::cerr << program << ": error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int RunModelServer(const ModelServerSpec& spec, cli::FlagSet& flags, int argc, char** argv) {
  ServerFlags server_flags;
  server_flags.Register(flags);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (auto status = flags.Parse(args); !status.ok()) return Fail(spec.program, status);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (spec.check_flags) {
    if (auto status = spec.check_flags(); !status.ok()) return Fail(spec.program, status);
  }

  ServerRunner runner(server_flags.ToOptions());
  runner.AddService(spec.make_service(runner.Executor(spec.service_name)));
  if (auto status = runner.Start(); !status.ok()) return Fail(spec.program, status);
  std::cerr << spec.program << ": listening on " << runner.address() << ", metrics on port "
            << runner.metrics_port() << "; " << spec.describe_load() << "\n";

  if (spec.attach_metrics) spec.attach_metrics(runner.registry());
  if (auto status = spec.load(); !status.ok()) return Fail(spec.program, status);
  runner.SetServing(true);
  std::cerr << spec.program << ": serving\n";

  const int signal_number = WaitForTerminationSignal();
  std::cerr << spec.program << ": signal " << signal_number << ", draining\n";
  if (spec.before_drain) spec.before_drain();
  runner.Shutdown();
  return 0;
}

}  // namespace rlhf::server
