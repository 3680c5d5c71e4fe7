#include "services/cli/generate_command.h"

#include <iostream>

#include "common/cli/flags.h"
#include "common/model/device_flags.h"
#include "common/model/generation.h"
#include "common/model/loader.h"
#include "common/model/sampling.h"
#include "common/tokenizer/tokenizer.h"

namespace rlhf::cli {
namespace {

int Fail(const absl::Status& status) {
  std::cerr << "rlhf generate: error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

}  // namespace

int RunGenerate(const std::vector<std::string>& args) {
  std::string model_dir, prompt;
  int64_t max_new_tokens = 64, top_k = 0;
  double temperature = 1.0, top_p = 1.0;
  uint64_t seed = 0;
  bool show_ids = false;
  FlagSet flags("rlhf generate",
                "Prints a continuation of --prompt sampled from the model in --model (a Hugging\n"
                "Face directory: config.json, *.safetensors, tokenizer.json).");
  flags.String("model", &model_dir, "model directory", /*required=*/true);
  flags.String("prompt", &prompt, "text to continue", /*required=*/true);
  flags.Int("max-new-tokens", &max_new_tokens, "most tokens to generate (EOS stops earlier)");
  flags.Float("temperature", &temperature, "softmax temperature; 0 = greedy (argmax)");
  flags.Float("top-p", &top_p, "nucleus sampling: keep the smallest set with this mass; 1 = off");
  flags.Int("top-k", &top_k, "keep only the k most likely tokens; 0 = off");
  flags.UInt("seed", &seed, "sampling seed: same seed, same output");
  flags.Bool("show-ids", &show_ids, "also print the prompt and generated token ids");
  model::DeviceFlags device_flags;
  device_flags.Register(flags);
  if (auto status = flags.Parse(args); !status.ok()) return Fail(status);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (!flags.positional().empty()) {
    return Fail(absl::InvalidArgumentError("unexpected argument '" + flags.positional()[0] + "'"));
  }

  model::SamplingParams params;
  params.max_new_tokens = max_new_tokens;
  params.temperature = static_cast<float>(temperature);
  params.top_k = top_k;
  params.top_p = static_cast<float>(top_p);
  params.greedy = temperature == 0.0;
  if (auto s = model::ValidateSamplingParams(params); !s.ok()) {
    return Fail(InTermsOfFlags(s, {{"max_new_tokens", "--max-new-tokens"},
                                   {"temperature", "--temperature"},
                                   {"top_k", "--top-k"},
                                   {"top_p", "--top-p"}}));
  }

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
  auto output = model::Generate(**model, prompts, params, seeds);
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
