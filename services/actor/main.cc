// rlhf-actor: serves the trainable policy (+ value head) and its AdamW optimizer
// (rlhf.v1.ActorService: Evaluate, Train, ExportWeights, Save/LoadCheckpoint) with health,
// reflection, /metrics and SIGTERM drain.

#include <iostream>
#include <string>
#include <vector>

#include "common/cli/flags.h"
#include "common/server/server_flags.h"
#include "common/server/server_runner.h"
#include "common/server/termination_signal.h"
#include "common/train/policy_trainer.h"
#include "services/actor/actor_service.h"

namespace {

int Fail(const absl::Status& status) {
  std::cerr << "rlhf-actor: error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  rlhf::server::BlockTerminationSignals();
  std::string model_dir;
  bool value_head = true;
  rlhf::train::TrainerOptions trainer_options;
  rlhf::train::OptimizerOptions& optimizer = trainer_options.optimizer;
  rlhf::server::ServerFlags server_flags;
  rlhf::cli::FlagSet flags(
      "rlhf-actor",
      "Serves rlhf.v1.ActorService: the trainable policy from --model (a Hugging Face\n"
      "directory, optionally with a TRL value head v_head.summary.*) and its AdamW optimizer.");
  flags.String("model", &model_dir, "initial policy directory", /*required=*/true);
  flags.Bool("value-head", &value_head,
             "attach a value head (PPO's critic); --value-head=false for none");
  flags.Float("lr", &optimizer.learning_rate, "AdamW learning rate");
  flags.Float("beta1", &optimizer.beta1, "AdamW beta1");
  flags.Float("beta2", &optimizer.beta2, "AdamW beta2");
  flags.Float("eps", &optimizer.eps, "AdamW eps");
  flags.Float("weight-decay", &optimizer.weight_decay, "AdamW weight decay");
  flags.Float("max-grad-norm", &optimizer.max_grad_norm,
              "clip gradients to this global L2 norm; <= 0: no clipping");
  flags.Int("chunk-tokens", &trainer_options.chunk_tokens,
            "tokens per chunk of the lm_head/log-softmax");
  server_flags.Register(flags);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (auto status = flags.Parse(args); !status.ok()) return Fail(status);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }

  rlhf::server::ServerRunner runner(server_flags.ToOptions());
  rlhf::actor::ActorService service(runner.Executor("rlhf.v1.ActorService"));
  runner.AddService(&service);
  if (auto status = runner.Start(); !status.ok()) return Fail(status);
  std::cerr << "rlhf-actor: listening on " << runner.address() << ", metrics on port "
            << runner.metrics_port() << "; loading " << model_dir << "\n";

  auto trainer = rlhf::train::PolicyTrainer::Load(model_dir, value_head, trainer_options);
  if (!trainer.ok()) return Fail(trainer.status());
  service.SetCore(std::make_shared<rlhf::actor::ActorCore>(std::move(*trainer)));
  runner.SetServing(true);
  std::cerr << "rlhf-actor: serving\n";

  const int signal_number = rlhf::server::WaitForTerminationSignal();
  std::cerr << "rlhf-actor: signal " << signal_number << ", draining\n";
  runner.Shutdown();
  return 0;
}
