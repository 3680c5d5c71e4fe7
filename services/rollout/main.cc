// rlhf-rollout: serves rlhf.v1.RolloutService (batched KV-cache generation; weight pushes
// from the actor) with health, reflection, /metrics and SIGTERM drain.

#include <iostream>
#include <string>
#include <vector>

#include "common/cli/flags.h"
#include "common/model/loader.h"
#include "common/server/server_flags.h"
#include "common/server/server_runner.h"
#include "common/server/termination_signal.h"
#include "services/rollout/rollout_service.h"

namespace {

int Fail(const absl::Status& status) {
  std::cerr << "rlhf-rollout: error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  rlhf::server::BlockTerminationSignals();
  std::string model_dir;
  rlhf::server::ServerFlags server_flags;
  rlhf::cli::FlagSet flags("rlhf-rollout",
                           "Serves rlhf.v1.RolloutService: generation from the policy in --model\n"
                           "(a Hugging Face directory), whose weights the actor replaces.");
  flags.String("model", &model_dir, "initial policy directory", /*required=*/true);
  server_flags.Register(flags);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (auto status = flags.Parse(args); !status.ok()) return Fail(status);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }

  rlhf::server::ServerRunner runner(server_flags.ToOptions());
  rlhf::rollout::RolloutService service(runner.Executor("rlhf.v1.RolloutService"));
  runner.AddService(&service);
  if (auto status = runner.Start(); !status.ok()) return Fail(status);
  std::cerr << "rlhf-rollout: listening on " << runner.address() << ", metrics on port "
            << runner.metrics_port() << "; loading " << model_dir << "\n";

  auto model = rlhf::model::LoadCausalLm(model_dir);
  if (!model.ok()) return Fail(model.status());
  service.SetCore(std::make_shared<rlhf::rollout::RolloutCore>(*model));
  runner.SetServing(true);
  std::cerr << "rlhf-rollout: serving\n";

  const int signal_number = rlhf::server::WaitForTerminationSignal();
  std::cerr << "rlhf-rollout: signal " << signal_number << ", draining\n";
  runner.Shutdown();
  return 0;
}
