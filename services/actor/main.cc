// rlhf-actor: serves the trainable policy (+ value head) and its AdamW optimizer
// (rlhf.v1.ActorService: Evaluate, Train, ExportWeights, Save/LoadCheckpoint) with health,
// reflection, /metrics and SIGTERM drain.

#include <signal.h>
#include <unistd.h>
#include <filesystem>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/cli/flags.h"
#include "common/cli/malloc_arenas.h"
#include "common/model/device_flags.h"
#include "common/server/model_server.h"
#include "common/server/termination_signal.h"
#include "common/train/data_parallel_group.h"
#include "common/train/policy_trainer.h"
#include "services/actor/actor_service.h"
#include "services/actor/torchrun_env.h"

int main(int argc, char** argv) {
  rlhf::cli::LimitMallocArenas();  // before any thread allocates
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
  std::string checkpoint_root = std::filesystem::current_path().string();
  flags.String("checkpoint-root", &checkpoint_root,
               "SaveCheckpoint/LoadCheckpoint accept only directories under this one (relative "
               "ones resolve against it; LoadCheckpoint may also name --model); default: the "
               "working directory");
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
  rlhf::train::DataParallelOptions group_options;
  std::string group_store = "127.0.0.1:29500";
  int64_t group_timeout_s = 600;
  int64_t bucket_mb = 25;
  flags.Int("world-size", &group_options.world_size,
            "data-parallel actor ranks in this group (jobs' runtime.num_actor_ranks); rank 0 "
            "serves the RPCs, the other ranks follow it and serve nothing; not given: "
            "torchrun's $WORLD_SIZE if set");
  flags.Int("rank", &group_options.rank,
            "this process's rank in [0, --world-size); not given: torchrun's $RANK if set");
  flags.String("group-store", &group_store,
               "host:port of rank 0's c10d TCPStore (rank 0 listens on the port); not given: "
               "torchrun's $MASTER_ADDR:$MASTER_PORT if set");
  flags.String("group-host", &group_options.gloo_host,
               "address this rank's Gloo transport binds; empty: this host's name");
  flags.Int("group-timeout-s", &group_timeout_s,
            "seconds to wait for the other ranks to join, and for any one collective");
  flags.Int("allreduce-bucket-mb", &bucket_mb,
            "gradients are all-reduced in buckets of this many MiB (like DDP's bucket_cap_mb)");

  rlhf::model::DeviceFlags device_flags;
  device_flags.Register(flags, /*with_dtype=*/false);

  // Loads the trainer and joins the group (blocks until every rank has joined).
  auto load_core = [&]() -> absl::StatusOr<std::shared_ptr<rlhf::actor::ActorCore>> {
    std::shared_ptr<rlhf::train::DataParallelGroup> group;
    if (group_options.world_size > 1 || group_options.rank != 0) {
      const size_t colon = group_store.rfind(':');
      if (colon == std::string::npos ||
          !absl::SimpleAtoi(group_store.substr(colon + 1), &group_options.store_port)) {
        return absl::InvalidArgumentError("--group-store: want host:port, got '" + group_store +
                                          "'");
      }
      group_options.store_host = group_store.substr(0, colon);
      group_options.timeout = std::chrono::seconds(group_timeout_s);

      auto joined = rlhf::train::DataParallelGroup::Join(group_options);
      if (!joined.ok()) return joined.status();
      group = *joined;
    }
    auto trainer =
        reward_model
            ? rlhf::train::PolicyTrainer::LoadRewardModel(model_dir, trainer_options, group)
            : rlhf::train::PolicyTrainer::Load(model_dir, value_head, trainer_options, group);
    if (!trainer.ok()) return trainer.status();
    auto core = std::make_shared<rlhf::actor::ActorCore>(std::move(*trainer), group);
    core->ConfineCheckpoints(checkpoint_root, model_dir);
    if (auto s = core->SyncWeightsFromLeader(); !s.ok()) return s;
    return core;
  };

  std::unique_ptr<rlhf::actor::ActorService> service;
  std::shared_ptr<rlhf::actor::ActorCore> core;
  // Ranks > 0 serve health and metrics only (ActorService answers UNAVAILABLE there) and
  // run rank 0's commands on this thread; when rank 0 stops them they stop the server.
  std::thread follower;
  std::atomic<int> follower_exit{0};
  std::atomic<bool> follower_done{false};
  const int exit_code = rlhf::server::RunModelServer(
      {.program = "rlhf-actor",
       .service_name = "rlhf.v1.ActorService",
       .check_flags = [&]() -> absl::Status {
         if (bucket_mb < 1 || bucket_mb > (int64_t{1} << 20)) {
           return absl::InvalidArgumentError(
               absl::StrCat("--allreduce-bucket-mb: want 1..1048576, got ", bucket_mb));
         }
         group_options.bucket_bytes = bucket_mb << 20;
         if (std::error_code ec; !std::filesystem::is_directory(checkpoint_root, ec)) {
           return absl::InvalidArgumentError(
               absl::StrCat("--checkpoint-root: ", checkpoint_root, " is not a directory"));
         }
         // torchrun's RANK, WORLD_SIZE, MASTER_ADDR/PORT and LOCAL_RANK fill the flags
         // not given; a bare --device cuda means cuda:LOCAL_RANK, else cuda:<rank>.
         rlhf::actor::GroupSettings group{.rank = group_options.rank,
                                          .world_size = group_options.world_size,
                                          .store = group_store};
         if (auto s =
                 rlhf::actor::ApplyTorchrunEnv([](const char* name) { return std::getenv(name); },
                                               {.rank = flags.Given("rank"),
                                                .world_size = flags.Given("world-size"),
                                                .store = flags.Given("group-store")},
                                               group);
             !s.ok()) {
           return s;
         }
         group_options.rank = group.rank;
         group_options.world_size = group.world_size;
         group_store = group.store;
         const int64_t local_rank = group.local_rank;
         auto resolved = device_flags.Resolve(model_dir, local_rank);
         if (!resolved.ok()) return resolved.status();
         trainer_options.device = resolved->device;
         group_options.device = resolved->device;  // NCCL between CUDA ranks, else Gloo
         return absl::OkStatus();
       },
       .make_service =
           [&](rlhf::server::RpcExecutor executor) {
             service = std::make_unique<rlhf::actor::ActorService>(std::move(executor));
             return service.get();
           },
       .describe_load = [&] { return "loading " + model_dir; },
       .load = [&]() -> absl::Status {
         auto loaded = load_core();
         if (!loaded.ok()) return loaded.status();
         core = *loaded;
         if (group_options.rank > 0) {
           follower = std::thread([&, core = core] {
             if (absl::Status s = core->FollowLeader(); !s.ok()) {
               std::cerr << "rlhf-actor rank " << group_options.rank << ": " << s << std::endl;
               follower_exit = 1;
             }
             follower_done = true;
             kill(getpid(), SIGTERM);  // rank 0 stopped us or is gone: drain and exit
           });
           return absl::OkStatus();
         }
         service->SetCore(core);
         return absl::OkStatus();
       }},
      flags, argc, argv);
  if (follower.joinable()) {
    // Stopped from outside while waiting for rank 0: the wait cannot be interrupted.
    if (!follower_done) std::_Exit(exit_code);
    follower.join();
    return exit_code != 0 ? exit_code : follower_exit.load();
  }
  if (core != nullptr) {
    if (absl::Status s = core->StopGroup(); !s.ok()) {
      std::cerr << "rlhf-actor: stopping the other ranks: " << s << std::endl;
    }
  }
  return exit_code;
}
