// rlhf-coordinator: accepts training jobs over rlhf.v1.JobService, keeps them in SQLite,
// runs them one at a time against the services each job names (or in-process), with
// health, reflection, /metrics (per-RPC and training metrics) and SIGTERM drain. A job
// interrupted by a crash or a stop resumes from its last checkpoint on the next start.

#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "common/cli/flags.h"
#include "common/cli/malloc_arenas.h"
#include "common/model/device_flags.h"
#include "common/rpc/client_security.h"
#include "common/server/model_server.h"
#include "common/server/termination_signal.h"
#include "services/coordinator/coordinator.h"
#include "services/coordinator/job_service.h"
#include "services/local/local_services.h"

int main(int argc, char** argv) {
  rlhf::cli::LimitMallocArenas();  // before any thread allocates
  rlhf::server::BlockTerminationSignals();
  rlhf::coordinator::CoordinatorOptions options;
  double rpc_timeout_s = 600, connect_timeout_s = 30;
  rlhf::cli::FlagSet flags(
      "rlhf-coordinator",
      "Serves rlhf.v1.JobService: submitted jobs are stored in --state-db and\n"
      "run one at a time in submission order.");
  flags.String("state-db", &options.state_db, "SQLite file holding the jobs (created if missing)");
  flags.Float("rpc-timeout", &rpc_timeout_s, "deadline in seconds of one call to a service");
  flags.Float("connect-timeout", &connect_timeout_s,
              "seconds a job waits for its services to be reachable before it fails");
  flags.Float("finished-job-metrics-seconds", &options.finished_job_metrics_seconds,
              "seconds a finished job's per-job series stay on /metrics");
  options.log = [](const std::string& line) { std::cerr << "rlhf-coordinator: " << line << "\n"; };
  // A job without endpoints runs its services inside this process, on --device.
  rlhf::model::DeviceFlags device;
  device.Register(flags);
  std::string data_root = std::filesystem::current_path().string();
  std::string checkpoint_root = data_root;
  flags.String("data-root", &data_root,
               "jobs' model dirs and datasets must lie under this directory (relative paths "
               "resolve against it); default: the working directory");
  flags.String("checkpoint-root", &checkpoint_root,
               "jobs' checkpoint.dir must lie under this directory (default for a job: "
               "<root>/<job id>); default: the working directory");
  // How this coordinator reaches a job's remote services (token, TLS).
  rlhf::rpc::ClientSecurityFlags service_security;
  service_security.Register(flags, "service-");

  std::unique_ptr<rlhf::coordinator::JobService> service;
  std::shared_ptr<rlhf::coordinator::Coordinator> coordinator;
  prometheus::Registry* registry = nullptr;
  return rlhf::server::RunModelServer(
      {.program = "rlhf-coordinator",
       .service_name = "rlhf.v1.JobService",
       .check_flags = [&]() -> absl::Status {
         if (!(rpc_timeout_s > 0) || !(connect_timeout_s > 0)) {
           return absl::InvalidArgumentError("--rpc-timeout and --connect-timeout must be > 0");
         }
         options.clients.rpc_timeout =
             std::chrono::milliseconds(static_cast<int64_t>(rpc_timeout_s * 1000));
         options.clients.connect_timeout =
             std::chrono::milliseconds(static_cast<int64_t>(connect_timeout_s * 1000));
         // The device must exist here (the dtype default needs no model: checked per job).
         auto parsed = rlhf::model::ParseDevice(device.device);
         if (!parsed.ok()) return parsed.status();
         if (auto s = rlhf::model::CheckDeviceAvailable(*parsed); !s.ok()) return s;
         if (!device.dtype.empty()) {
           if (auto d = rlhf::model::ParseDtype(device.dtype); !d.ok()) return d.status();
         }
         for (const auto& [flag, root] :
              {std::pair<std::string, std::string*>{"--data-root", &data_root},
               {"--checkpoint-root", &checkpoint_root}}) {
           if (std::error_code ec; !std::filesystem::is_directory(*root, ec)) {
             return absl::InvalidArgumentError(flag + ": " + *root + " is not a directory");
           }
         }
         options.roots = {.data = data_root, .checkpoints = checkpoint_root};
         auto security = service_security.Load();
         if (!security.ok()) return security.status();
         options.clients.security = *std::move(security);
         options.in_process_services = rlhf::coordinator::LocalServicesFactory(device);
         return absl::OkStatus();
       },
       .make_service =
           [&](rlhf::server::RpcExecutor executor) {
             service = std::make_unique<rlhf::coordinator::JobService>(std::move(executor));
             return service.get();
           },
       .describe_load = [&] { return "opening " + options.state_db; },
       .load = [&]() -> absl::Status {
         auto created = rlhf::coordinator::Coordinator::Create(options, registry);
         if (!created.ok()) return created.status();
         coordinator = std::move(*created);
         if (auto status = coordinator->Start(); !status.ok()) return status;
         service->SetCoordinator(coordinator);
         return absl::OkStatus();
       },
       .attach_metrics = [&](prometheus::Registry& r) { registry = &r; },
       .before_drain =
           [&] {
             if (coordinator != nullptr) coordinator->Stop();
           }},
      flags, argc, argv);
}
