#include "services/local/local_services.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/jobs/algorithms.h"
#include "common/jobs/train_config.h"
#include "common/model/loader.h"
#include "common/server/server_runner.h"
#include "common/serving/actor/actor_core.h"
#include "common/serving/reference/reference_core.h"
#include "common/serving/reward/scorer.h"
#include "common/serving/rollout/rollout_core.h"
#include "common/train/policy_trainer.h"
#include "services/actor/actor_service.h"
#include "services/local/in_process_weight_sync.h"
#include "services/reference/reference_service.h"
#include "services/reward/reward_service.h"
#include "services/rollout/rollout_service.h"

namespace rlhf::coordinator {
namespace {

server::ServerOptions InProcessOptions() {
  server::ServerOptions options;
  options.listen_address = "127.0.0.1:0";  // gRPC needs one port; calls use in-process channels
  options.metrics_address = "";            // the coordinator's registry serves job metrics
  // Evaluate, LogProbs and Score overlap, and with runtime.max_policy_lag a prefetched
  // Generate (then Score, with dynamic sampling) runs beside them and Train.
  options.worker_threads = 5;
  return options;
}

}  // namespace

struct LocalServices::State {
  server::ServerRunner runner{InProcessOptions()};
  std::unique_ptr<actor::ActorService> actor;
  std::unique_ptr<rollout::RolloutService> rollout;
  std::unique_ptr<reference::ReferenceService> reference;
  std::unique_ptr<reward::RewardService> reward;
  // The cores the actor and rollout services serve, for the in-process weight sync.
  std::shared_ptr<actor::ActorCore> actor_core;
  std::shared_ptr<rollout::RolloutCore> rollout_core;
  // The rollout may sample from the trainer's own tensors: only when it never samples
  // during a training step (runtime.max_policy_lag 0).
  bool share_weights = true;
};

LocalServices::LocalServices(std::unique_ptr<State> state) : state_(std::move(state)) {}
LocalServices::~LocalServices() { state_->runner.Shutdown(); }

absl::StatusOr<std::unique_ptr<LocalServices>> LocalServices::Start(
    const v1::JobSpec& spec, const model::DeviceFlags& device) {
  auto state = std::make_unique<State>();
  const jobs::AlgorithmFacts* facts = jobs::FindAlgorithm(spec.algorithm());
  if (facts == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown algorithm \"", spec.algorithm(), "\""));
  }
  const bool online = facts->online;

  train::TrainerOptions trainer_options;
  const v1::OptimizerSpec& opt = spec.optimizer();
  trainer_options.optimizer.learning_rate = opt.learning_rate();
  trainer_options.optimizer.beta1 = opt.adam_beta1();
  trainer_options.optimizer.beta2 = opt.adam_beta2();
  trainer_options.optimizer.eps = opt.adam_epsilon();
  trainer_options.optimizer.weight_decay = opt.weight_decay();
  trainer_options.optimizer.max_grad_norm = opt.grad_clip();
  auto policy_load = device.Resolve(spec.models().policy_dir());
  if (!policy_load.ok()) return policy_load.status();
  trainer_options.device = policy_load->device;
  // reward_model trains a sequence classifier initialised from the policy directory.
  auto trainer =
      facts->id == jobs::JobAlgorithm::kRewardModel
          ? train::PolicyTrainer::LoadRewardModel(spec.models().policy_dir(), trainer_options)
          : train::PolicyTrainer::Load(spec.models().policy_dir(), facts->critic, trainer_options);
  if (!trainer.ok()) return trainer.status();

  state->actor =
      std::make_unique<actor::ActorService>(state->runner.Executor("rlhf.v1.ActorService"));
  state->actor_core = std::make_shared<actor::ActorCore>(std::move(*trainer));
  state->actor->SetCore(state->actor_core);
  state->reference = std::make_unique<reference::ReferenceService>(
      state->runner.Executor("rlhf.v1.ReferenceService"));
  // Only jobs that ask the reference for log-probs load it (SFT, SimPO, ORPO and reward
  // models never do; nor online jobs without a KL penalty).
  if (jobs::JobUsesReference(spec)) {
    auto reference_load = device.Resolve(spec.models().reference_dir());
    if (!reference_load.ok()) return reference_load.status();
    auto reference = model::LoadCausalLm(spec.models().reference_dir(), *reference_load);
    if (!reference.ok()) return reference.status();
    state->reference->SetCore(std::make_shared<reference::ReferenceCore>(*reference));
  }
  state->rollout =
      std::make_unique<rollout::RolloutService>(state->runner.Executor("rlhf.v1.RolloutService"));
  state->reward =
      std::make_unique<reward::RewardService>(state->runner.Executor("rlhf.v1.RewardService"));
  if (online) {
    auto sampler = model::LoadCausalLm(spec.models().policy_dir(), *policy_load);
    if (!sampler.ok()) return sampler.status();
    state->rollout_core = std::make_shared<rollout::RolloutCore>(*sampler);
    state->share_weights = spec.runtime().max_policy_lag() == 0;
    state->rollout->SetCore(state->rollout_core);
  }
  if (online && spec.reward().kind() != "none") {  // distill scores nothing
    auto reward_load = device.Resolve(spec.models().reward_dir());
    if (!reward_load.ok()) return reward_load.status();
    auto scorer = reward::MakeScorer(spec.reward(), spec.models().reward_dir(), *reward_load);
    if (!scorer.ok()) return scorer.status();
    state->reward->SetScorer(std::shared_ptr<reward::Scorer>(std::move(*scorer)));
  }
  for (grpc::Service* service : std::initializer_list<grpc::Service*>{
           state->actor.get(), state->rollout.get(), state->reference.get(), state->reward.get()}) {
    state->runner.AddService(service);
  }
  if (auto status = state->runner.Start(); !status.ok()) return status;
  state->runner.SetServing(true);
  return std::unique_ptr<LocalServices>(new LocalServices(std::move(state)));
}

InProcessServicesFactory LocalServicesFactory(const model::DeviceFlags& device) {
  return [device](const v1::JobSpec& spec) -> absl::StatusOr<std::unique_ptr<InProcessServices>> {
    auto started = LocalServices::Start(spec, device);
    if (!started.ok()) return started.status();
    return std::unique_ptr<InProcessServices>(std::move(*started));
  };
}

ServiceChannels LocalServices::Channels() {
  ServiceChannels channels;
  channels.in_process = true;
  channels.actor = state_->runner.InProcessChannel();
  channels.reference = state_->runner.InProcessChannel();
  channels.reward = state_->runner.InProcessChannel();
  channels.rollout.push_back(state_->runner.InProcessChannel());
  channels.rollout_addresses.push_back("in-process");
  State* state = state_.get();  // lives as long as these services
  channels.weight_sync = [state](v1::DataType wire_dtype) -> absl::StatusOr<InProcessSync> {
    if (state->rollout_core == nullptr) {
      return absl::FailedPreconditionError("weight sync: this job has no in-process rollout");
    }
    return SyncWeightsInProcess(*state->actor_core, *state->rollout_core, wire_dtype,
                                state->share_weights);
  };
  return channels;
}

}  // namespace rlhf::coordinator
