// rlhf-rollout: serves rlhf.v1.RolloutService (batched KV-cache generation; weight pushes
// from the actor) with health, reflection, /metrics and SIGTERM drain.

#include <memory>
#include <string>

#include "common/cli/flags.h"
#include "common/cli/malloc_arenas.h"
#include "common/model/device_flags.h"
#include "common/model/loader.h"
#include "common/server/model_server.h"
#include "common/server/termination_signal.h"
#include "services/rollout/rollout_service.h"

int main(int argc, char** argv) {
  rlhf::cli::LimitMallocArenas();  // before any thread allocates
  rlhf::server::BlockTerminationSignals();
  std::string model_dir;
  rlhf::cli::FlagSet flags("rlhf-rollout",
                           "Serves rlhf.v1.RolloutService: generation from the policy in --model\n"
                           "(a Hugging Face directory), whose weights the actor replaces.");
  flags.String("model", &model_dir, "initial policy directory", /*required=*/true);

  rlhf::model::DeviceFlags device_flags;
  device_flags.Register(flags);
  rlhf::model::LoadOptions load_options;

  std::unique_ptr<rlhf::rollout::RolloutService> service;
  return rlhf::server::RunModelServer(
      {.program = "rlhf-rollout",
       .service_name = "rlhf.v1.RolloutService",
       .check_flags = [&]() -> absl::Status {
         auto resolved = device_flags.Resolve(model_dir);
         if (!resolved.ok()) return resolved.status();
         load_options = *resolved;
         return absl::OkStatus();
       },
       .make_service =
           [&](rlhf::server::RpcExecutor executor) {
             service = std::make_unique<rlhf::rollout::RolloutService>(std::move(executor));
             return service.get();
           },
       .describe_load = [&] { return "loading " + model_dir; },
       .load = [&]() -> absl::Status {
         auto model = rlhf::model::LoadCausalLm(model_dir, load_options);
         if (!model.ok()) return model.status();
         service->SetCore(std::make_shared<rlhf::rollout::RolloutCore>(*model));
         return absl::OkStatus();
       }},
      flags, argc, argv);
}
