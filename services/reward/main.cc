// rlhf-reward: serves rlhf.v1.RewardService.Score from a reward model or a built-in
// verifier, with health, reflection, /metrics and SIGTERM drain.

#include <iostream>
#include <string>
#include <vector>

#include "common/cli/flags.h"
#include "common/model/loader.h"
#include "common/server/server_flags.h"
#include "common/server/server_runner.h"
#include "common/server/termination_signal.h"
#include "services/reward/reward_service.h"

namespace {

int Fail(const absl::Status& status) {
  std::cerr << "rlhf-reward: error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

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
  rlhf::server::ServerFlags server_flags;
  rlhf::cli::FlagSet flags("rlhf-reward",
                           "Serves rlhf.v1.RewardService.Score from a reward model (--model, a\n"
                           "*ForSequenceClassification Hugging Face directory) or a verifier.");
  flags.String("scorer", &scorer_kind,
               "model | exact_match | regex | length (default: model when --model is set)");
  flags.String("model", &model_dir, "reward model directory (--scorer model)");
  flags.String("pattern", &pattern, "PCRE2 pattern a response must contain (--scorer regex)");
  flags.Int("target-length", &target_length, "response length in tokens (--scorer length)");
  server_flags.Register(flags);
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (auto status = flags.Parse(args); !status.ok()) return Fail(status);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (scorer_kind.empty()) {
    if (model_dir.empty()) return Fail(absl::InvalidArgumentError("give --model or --scorer"));
    scorer_kind = "model";
  }

  rlhf::server::ServerRunner runner(server_flags.ToOptions());
  rlhf::reward::RewardService service(runner.Executor("rlhf.v1.RewardService"));
  runner.AddService(&service);
  if (auto status = runner.Start(); !status.ok()) return Fail(status);
  std::cerr << "rlhf-reward: listening on " << runner.address() << ", metrics on port "
            << runner.metrics_port() << "; scorer " << scorer_kind << "\n";

  auto scorer = MakeScorer(scorer_kind, model_dir, pattern, target_length);
  if (!scorer.ok()) return Fail(scorer.status());
  service.SetScorer(std::shared_ptr<rlhf::reward::Scorer>(std::move(*scorer)));
  runner.SetServing(true);
  std::cerr << "rlhf-reward: serving\n";

  const int signal_number = rlhf::server::WaitForTerminationSignal();
  std::cerr << "rlhf-reward: signal " << signal_number << ", draining\n";
  runner.Shutdown();
  return 0;
}
