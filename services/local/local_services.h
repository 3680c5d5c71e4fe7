#pragma once
// The four model services of one job inside this process (the embedded default: a job
// with no endpoints, as `rlhf local` runs it): the same service classes the binaries
// serve, loaded from the job's model directories, reached over in-process gRPC channels.
// Not thread-safe to construct; the services themselves are.

#include <memory>

#include "absl/status/statusor.h"
#include "common/model/device_flags.h"
#include "rlhf/v1/job.pb.h"
#include "services/coordinator/service_clients.h"

namespace rlhf::coordinator {

class LocalServices final : public InProcessServices {
 public:
  // Loads the policy (actor, with a value head for PPO), a sampling copy (rollout), the
  // reference and the reward model or verifier named by `spec` (defaults applied), on
  // `device`'s device; the frozen copies in its dtype (the actor keeps float32).
  static absl::StatusOr<std::unique_ptr<LocalServices>> Start(
      const v1::JobSpec& spec, const model::DeviceFlags& device = {});
  ~LocalServices() override;

  ServiceChannels Channels() override;

 private:
  struct State;
  explicit LocalServices(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// LocalServices::Start as the factory a Coordinator takes
// (CoordinatorOptions::in_process_services).
InProcessServicesFactory LocalServicesFactory(const model::DeviceFlags& device = {});

}  // namespace rlhf::coordinator
