// rlhf-actor: serves the trainable policy (+ value head) and its AdamW optimizer
// (rlhf.v1.ActorService: Evaluate, Train, ExportWeights, Save/LoadCheckpoint) with health,
// reflection, /metrics and SIGTERM drain.

#include <memory>
#include <string>

#include "common/cli/flags.h"
#include "common/server/model_server.h"
#include "common/server/termination_signal.h"
#include "common/train/policy_trainer.h"
#include "services/actor/actor_service.h"

int main(int argc, char** argv) {
  rlhf::server::BlockTerminationSignals();
  std::string model_dir;
  bool value_head = true, reward_model = false;
  rlhf::train::TrainerOptions trainer_options;
  rlhf::train::OptimizerOptions& optimizer = trainer_options.optimizer;
  rlhf::cli::FlagSet flags(
      "rlhf-actor",
      "Serves rlhf.v1.ActorService: the trainable policy from --model (a Hugging Face\n"
      "directory, optionally with a TRL value head v_head.summary.*) and its AdamW optimizer.");
  flags.String("model", &model_dir, "initial policy directory", /*required=*/true);
  flags.Bool("value-head", &value_head,
             "attach a value head (PPO's critic); --value-head=false for none");
  flags.Bool("reward-model", &reward_model,
             "train a reward model (sequence classifier; jobs with algorithm reward_model) "
             "instead of a policy");
  flags.Float("lr", &optimizer.learning_rate, "AdamW learning rate");
  flags.Float("beta1", &optimizer.beta1, "AdamW beta1");
  flags.Float("beta2", &optimizer.beta2, "AdamW beta2");
  flags.Float("eps", &optimizer.eps, "AdamW eps");
  flags.Float("weight-decay", &optimizer.weight_decay, "AdamW weight decay");
  flags.Float("max-grad-norm", &optimizer.max_grad_norm,
              "clip gradients to this global L2 norm; <= 0: no clipping");
  flags.Int("chunk-tokens", &trainer_options.chunk_tokens,
            "tokens per chunk of the lm_head/log-softmax");

  std::unique_ptr<rlhf::actor::ActorService> service;
  return rlhf::server::RunModelServer(
      {.program = "rlhf-actor",
       .service_name = "rlhf.v1.ActorService",
       .make_service =
           [&](rlhf::server::RpcExecutor executor) {
             service = std::make_unique<rlhf::actor::ActorService>(std::move(executor));
             return service.get();
           },
       .describe_load = [&] { return "loading " + model_dir; },
       .load = [&]() -> absl::Status {
         auto trainer =
             reward_model
                 ? rlhf::train::PolicyTrainer::LoadRewardModel(model_dir, trainer_options)
                 : rlhf::train::PolicyTrainer::Load(model_dir, value_head, trainer_options);
         if (!trainer.ok()) return trainer.status();
         service->SetCore(std::make_shared<rlhf::actor::ActorCore>(std::move(*trainer)));
         return absl::OkStatus();
       }},
      flags, argc, argv);
}
