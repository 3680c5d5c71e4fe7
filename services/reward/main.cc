// rlhf-reward: serves rlhf.v1.RewardService.Score from a reward model or a built-in
// verifier, with health, reflection, /metrics and SIGTERM drain.

#include <memory>
#include <string>

#include "common/cli/flags.h"
#include "common/model/loader.h"
#include "common/server/model_server.h"
#include "common/server/termination_signal.h"
#include "services/reward/reward_service.h"

namespace {

absl::StatusOr<std::unique_ptr<rlhf::reward::Scorer>> MakeScorer(const std::string& kind,
                                                                 const std::string& model_dir,
                                                                 const std::string& pattern,
                                                                 int64_t target_length) {
  if (kind == "model") {
    if (model_dir.empty()) return absl::InvalidArgumentError("--scorer model needs --model");
    auto model = rlhf::model::LoadSequenceClassifier(model_dir);
    if (!model.ok()) return model.status();
    return rlhf::reward::MakeModelScorer(*model);
  }
  if (kind == "exact_match") return rlhf::reward::MakeExactMatchScorer();
  if (kind == "regex") {
    if (pattern.empty()) return absl::InvalidArgumentError("--scorer regex needs --pattern");
    return rlhf::reward::MakeRegexScorer(pattern);
  }
  if (kind == "length") return rlhf::reward::MakeLengthScorer(target_length);
  return absl::InvalidArgumentError("--scorer must be model, exact_match, regex or length, got '" +
                                    kind + "'");
}

}  // namespace

int main(int argc, char** argv) {
  rlhf::server::BlockTerminationSignals();
  std::string model_dir, scorer_kind, pattern;
  int64_t target_length = 0;
  rlhf::cli::FlagSet flags("rlhf-reward",
                           "Serves rlhf.v1.RewardService.Score from a reward model (--model, a\n"
                           "*ForSequenceClassification Hugging Face directory) or a verifier.");
  flags.String("scorer", &scorer_kind,
               "model | exact_match | regex | length (default: model when --model is set)");
  flags.String("model", &model_dir, "reward model directory (--scorer model)");
  flags.String("pattern", &pattern, "PCRE2 pattern a response must contain (--scorer regex)");
  flags.Int("target-length", &target_length, "response length in tokens (--scorer length)");

  std::unique_ptr<rlhf::reward::RewardService> service;
  return rlhf::server::RunModelServer(
      {.program = "rlhf-reward",
       .service_name = "rlhf.v1.RewardService",
       .check_flags = [&]() -> absl::Status {
         if (scorer_kind.empty()) {
           if (model_dir.empty()) return absl::InvalidArgumentError("give --model or --scorer");
           scorer_kind = "model";
         }
         return absl::OkStatus();
       },
       .make_service =
           [&](rlhf::server::RpcExecutor executor) {
             service = std::make_unique<rlhf::reward::RewardService>(std::move(executor));
             return service.get();
           },
       .describe_load = [&] { return "scorer " + scorer_kind; },
       .load = [&]() -> absl::Status {
         auto scorer = MakeScorer(scorer_kind, model_dir, pattern, target_length);
         if (!scorer.ok()) return scorer.status();
         service->SetScorer(std::shared_ptr<rlhf::reward::Scorer>(std::move(*scorer)));
         return absl::OkStatus();
       }},
      flags, argc, argv);
}
