#include "services/cli/generate_command.h"

#include <iostream>

#include "common/cli/flags.h"
#include "common/model/device_flags.h"
#include "common/model/generation.h"
#include "common/model/loader.h"
#include "common/model/sampling.h"
#include "common/tokenizer/tokenizer.h"
#include "services/cli/job_events.h"
#include "services/cli/sampling_flags.h"

namespace rlhf::cli {
namespace {

int Fail(const absl::Status& status) {
  std::cerr << "rlhf generate: error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int RunGenerate(const std::vector<std::string>& args) {
  std::string model_dir, prompt;
  SamplingFlags sampling;
  uint64_t seed = 0;
  bool show_ids = false;
  FlagSet flags("rlhf generate",
                "Prints a continuation of --prompt sampled from the model in --model (a Hugging\n"
                "Face directory: config.json, *.safetensors, tokenizer.json).");
  flags.String("model", &model_dir, "model directory", /*required=*/true);
  flags.String("prompt", &prompt, "text to continue", /*required=*/true);
  sampling.Register(flags);
  flags.UInt("seed", &seed, "sampling seed: same seed, same output");
  flags.Bool("show-ids", &show_ids, "also print the prompt and generated token ids");
  model::DeviceFlags device_flags;
  device_flags.Register(flags);
  if (int exit = ParseFlags(flags, args, "generate", /*positional=*/0); exit >= 0) return exit;
  auto params = sampling.Params();
  if (!params.ok()) return Fail(params.status());

  auto load_options = device_flags.Resolve(model_dir);
  if (!load_options.ok()) return Fail(load_options.status());
  auto tokenizer = tokenizer::Tokenizer::FromDirectory(model_dir);
  if (!tokenizer.ok()) return Fail(tokenizer.status());
  auto model = model::LoadCausalLm(model_dir, *load_options);
  if (!model.ok()) return Fail(model.status());
  auto prompt_ids = (*tokenizer)->Encode(prompt);
  if (!prompt_ids.ok()) return Fail(prompt_ids.status());
  if (prompt_ids->empty()) return Fail(absl::InvalidArgumentError("--prompt encodes to no tokens"));

  const std::vector<std::vector<int64_t>> prompts = {*prompt_ids};
  const std::vector<uint64_t> seeds = {seed};
  auto output = model::Generate(**model, prompts, *params, seeds);
  if (!output.ok()) return Fail(output.status());
  auto text = (*tokenizer)->Decode(output->tokens[0], /*skip_special_tokens=*/true);
  if (!text.ok()) return Fail(text.status());

  std::cout << prompt << *text << "\n";
  if (show_ids) {
    auto print = [](const char* label, const std::vector<int64_t>& ids) {
      std::cout << label;
      for (int64_t id : ids) std::cout << ' ' << id;
      std::cout << "\n";
    };
    print("prompt ids:", *prompt_ids);
    print("generated ids:", output->tokens[0]);
  }
  return 0;
}

}  // namespace rlhf::cli
