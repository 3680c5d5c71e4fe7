// Decode throughput of rlhf::model::Generate. Driven by generation_bench.py, which
// measures transformers' generate on the same weights and prompts in the same run and
// prints the ratio. Prints one JSON object per batch size on stdout.
//
//   generation_bench --model DIR --prompts FILE.json --batch-sizes 1,8,32
//                    --new-tokens 128 [--repeats 2] [--device cuda:0 --dtype float32]
//                    [--samples-per-prompt N --no-share-prefill]
// FILE.json: {"prompts": [[ids...], ...]} (at least max(batch) prompts).
// With --samples-per-prompt N a batch of B rows is B / N prompts, each repeated N times
// in adjacent rows (a GRPO group's layout); --no-share-prefill makes every row prefill its
// own copy (prefix sharing off, for a before/after comparison).

#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/cli/flags.h"
#include "common/model/device_flags.h"
#include "common/model/generation.h"
#include "common/model/loader.h"
#include "nlohmann/json.hpp"

namespace {

int Fail(const absl::Status& status) {
  std::cerr << "generation_bench: " << status.message() << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, prompts_file, batch_sizes = "1,8,32";
  int64_t new_tokens = 128, repeats = 2, samples_per_prompt = 1;
  bool no_share_prefill = false;
  rlhf::cli::FlagSet flags("generation_bench", "Decode throughput of rlhf::model::Generate.");
  flags.String("model", &model_dir, "model directory", true);
  flags.String("prompts", &prompts_file, "JSON file {\"prompts\": [[ids]]}", true);
  flags.String("batch-sizes", &batch_sizes, "comma-separated batch sizes");
  flags.Int("new-tokens", &new_tokens, "tokens generated per prompt (EOS disabled)");
  flags.Int("repeats", &repeats, "timed runs per batch size; the fastest is reported");
  flags.Int("samples-per-prompt", &samples_per_prompt,
            "rows per distinct prompt (adjacent repeats, as GRPO groups)");
  flags.Bool("no-share-prefill", &no_share_prefill, "every row prefills its own prompt copy");
  rlhf::model::DeviceFlags device_flags;
  device_flags.Register(flags);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (auto s = flags.Parse(args); !s.ok()) return Fail(s);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }

  auto load_options = device_flags.Resolve(model_dir);
  if (!load_options.ok()) return Fail(load_options.status());
  auto model = rlhf::model::LoadCausalLm(model_dir, *load_options);
  if (!model.ok()) return Fail(model.status());
  std::ifstream in(prompts_file);
  auto json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.contains("prompts")) {
    return Fail(absl::InvalidArgumentError(prompts_file + ": not {\"prompts\": [[ids]]}"));
  }
  const auto all_prompts = json["prompts"].get<std::vector<std::vector<int64_t>>>();

  rlhf::model::SamplingParams params;
  params.greedy = true;
  params.max_new_tokens = new_tokens;
  params.share_prompt_prefill = !no_share_prefill;
  if (samples_per_prompt < 1) {
    return Fail(absl::InvalidArgumentError("--samples-per-prompt must be >= 1"));
  }
  for (absl::string_view text : absl::StrSplit(batch_sizes, ',')) {
    size_t batch = 0;
    if (!absl::SimpleAtoi(text, &batch) || batch == 0 || batch > all_prompts.size()) {
      return Fail(absl::InvalidArgumentError("bad batch size " + std::string(text)));
    }
    std::vector<std::vector<int64_t>> prompts;
    for (size_t row = 0; row < batch; ++row) {
      prompts.push_back(all_prompts[row / static_cast<size_t>(samples_per_prompt)]);
    }
    std::vector<uint64_t> seeds(batch, 0);
    double best = 1e30;
    std::vector<int64_t> first_row;
    for (int64_t r = 0; r <= repeats; ++r) {  // run 0 warms up
      const auto start = std::chrono::steady_clock::now();
      auto out = rlhf::model::Generate(**model, prompts, params, seeds);
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (!out.ok()) return Fail(out.status());
      for (const auto& row : out->tokens) {
        if (static_cast<int64_t>(row.size()) != new_tokens) {
          return Fail(absl::InternalError("a row stopped early; the bench model must have no EOS"));
        }
      }
      first_row = out->tokens[0];
      if (r > 0) best = std::min(best, seconds);
    }
    nlohmann::json result = {{"impl", "rlhf"},
                             {"batch", batch},
                             {"seconds", best},
                             {"tokens_per_second", batch * new_tokens / best},
                             {"threads", at::get_num_threads()},
                             {"samples_per_prompt", samples_per_prompt},
                             {"share_prefill", !no_share_prefill},
                             {"device", load_options->device.str()},
                             {"first_row", first_row}};
    std::cout << result.dump() << std::endl;
  }
  return 0;
}
