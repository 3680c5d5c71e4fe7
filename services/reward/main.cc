// rlhf-reward: serves rlhf.v1.RewardService.Score from a reward model or a built-in
// verifier, with health, reflection, /metrics and SIGTERM drain.

#include <memory>
#include <string>

#include "common/cli/flags.h"
#include "common/cli/malloc_arenas.h"
#include "common/model/device_flags.h"
#include "common/server/model_server.h"
#include "common/server/termination_signal.h"
#include "services/reward/reward_service.h"

int main(int argc, char** argv) {
  rlhf::cli::LimitMallocArenas();  // before any thread allocates
  rlhf::server::BlockTerminationSignals();
  std::string model_dir, scorer_kind, pattern;
  int64_t target_length = 64;
  double match_reward = 1.0, mismatch_reward = 0.0;
  rlhf::cli::FlagSet flags(
      "rlhf-reward",
      "Serves rlhf.v1.RewardService.Score from a reward model (--model, a\n"
      "*ForSequenceClassification Hugging Face directory) or a verifier. A Score request\n"
      "that carries its job's reward spec is scored as the job says; these flags are the\n"
      "scorer for requests without one.");
  flags.String("scorer", &scorer_kind,
               "model | exact_match | regex | length (default: model when --model is set)");
  flags.String("model", &model_dir, "reward model directory (--scorer model)");
  flags.String("pattern", &pattern, "PCRE2 pattern a response must contain (--scorer regex)");
  flags.Int("target-length", &target_length, "response length in tokens (--scorer length)");
  flags.Float("match-reward", &match_reward, "exact_match / regex reward on a match");
  flags.Float("mismatch-reward", &mismatch_reward, "exact_match / regex reward otherwise");

  rlhf::model::DeviceFlags device_flags;
  device_flags.Register(flags);
  rlhf::model::LoadOptions load_options;

  std::unique_ptr<rlhf::reward::RewardService> service;
  return rlhf::server::RunModelServer(
      {.program = "rlhf-reward",
       .service_name = "rlhf.v1.RewardService",
       .check_flags = [&]() -> absl::Status {
         if (scorer_kind.empty()) {
           if (model_dir.empty()) return absl::InvalidArgumentError("give --model or --scorer");
           scorer_kind = "model";
         }
         auto resolved = device_flags.Resolve(model_dir);
         if (!resolved.ok()) return resolved.status();
         load_options = *resolved;
         return absl::OkStatus();
       },
       .make_service =
           [&](rlhf::server::RpcExecutor executor) {
             service = std::make_unique<rlhf::reward::RewardService>(std::move(executor));
             return service.get();
           },
       .describe_load = [&] { return "scorer " + scorer_kind; },
       .load = [&]() -> absl::Status {
         rlhf::v1::RewardSpec spec;
         spec.set_kind(scorer_kind);
         spec.set_pattern(pattern);
         spec.set_target_length(target_length);
         spec.set_match_reward(match_reward);
         spec.set_mismatch_reward(mismatch_reward);
         auto scorer = rlhf::reward::MakeScorer(spec, model_dir, load_options);
         if (!scorer.ok()) return scorer.status();
         service->SetScorer(std::shared_ptr<rlhf::reward::Scorer>(std::move(*scorer)));
         return absl::OkStatus();
       }},
      flags, argc, argv);
}
