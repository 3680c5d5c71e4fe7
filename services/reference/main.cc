// rlhf-reference: serves the frozen reference policy's per-token logprobs
// (rlhf.v1.ReferenceService) with health, reflection, /metrics and SIGTERM drain.

#include <memory>
#include <string>

#include "common/cli/flags.h"
#include "common/cli/malloc_arenas.h"
#include "common/model/device_flags.h"
#include "common/model/loader.h"
#include "common/server/model_server.h"
#include "common/server/termination_signal.h"
#include "services/reference/reference_service.h"

int main(int argc, char** argv) {
  rlhf::cli::LimitMallocArenas();  // before any thread allocates
  rlhf::server::BlockTerminationSignals();
  std::string model_dir;
  rlhf::cli::FlagSet flags("rlhf-reference",
                           "Serves rlhf.v1.ReferenceService.LogProbs from the frozen model in\n"
                           "--model (a Hugging Face directory).");
  flags.String("model", &model_dir, "model directory", /*required=*/true);

  rlhf::model::DeviceFlags device_flags;
  device_flags.Register(flags);
  rlhf::model::LoadOptions load_options;

  std::unique_ptr<rlhf::reference::ReferenceService> service;
  return rlhf::server::RunModelServer(
      {.program = "rlhf-reference",
       .service_name = "rlhf.v1.ReferenceService",
       .check_flags = [&]() -> absl::Status {
         auto resolved = device_flags.Resolve(model_dir);
         if (!resolved.ok()) return resolved.status();
         load_options = *resolved;
         return absl::OkStatus();
       },
       .make_service =
           [&](rlhf::server::RpcExecutor executor) {
             service = std::make_unique<rlhf::reference::ReferenceService>(std::move(executor));
             return service.get();
           },
       .describe_load = [&] { return "loading " + model_dir; },
       .load = [&]() -> absl::Status {
         auto model = rlhf::model::LoadCausalLm(model_dir, load_options);
         if (!model.ok()) return model.status();
         service->SetCore(std::make_shared<rlhf::reference::ReferenceCore>(*model));
         return absl::OkStatus();
       }},
      flags, argc, argv);
}
