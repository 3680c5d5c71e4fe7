// Seconds per optimizer step and peak resident memory of the actor's training step
// (PolicyTrainer::TrainPolicyGradient, GRPO, one minibatch = one AdamW step) for one
// setting of precision, gradient checkpointing and micro-batching. One setting per
// process, since peak RSS only grows: driven by train_step_bench.py, which runs every
// setting and the same step in PyTorch (transformers) in the same run and prints the table.
// Prints one JSON object on stdout.
//
//   train_step_bench --model DIR [--rows 8 --prompt-tokens 32 --response-tokens 64]
//                    [--precision fp32|bf16-mixed] [--checkpointing] [--microbatch-tokens N]
//                    [--steps 2] [--device cpu] [--compare-adamw]
//
// --compare-adamw: afterwards, times the AdamW update alone over the model's parameters
// (random gradients, a fresh optimizer whose moments one untimed step creates):
// torch::optim::AdamW::step (as the actor stepped before) against FusedAdamWStep (as it
// steps now), two steps each, in this process.

#include <sys/resource.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <random>

#include <torch/cuda.h>

#include "common/cli/flags.h"
#include "common/model/device_flags.h"
#include "common/train/multi_tensor_step.h"
#include "common/train/policy_trainer.h"
#include "nlohmann/json.hpp"

namespace {

int Fail(const absl::Status& status) {
  std::cerr << "train_step_bench: " << status.message() << "\n";
  return 1;
}

double PeakRssMiB() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, precision = "fp32";
  int64_t rows = 8, prompt_tokens = 32, response_tokens = 64, steps = 2, microbatch_tokens = 0;
  bool checkpointing = false;
  rlhf::cli::FlagSet flags("train_step_bench", "Seconds and peak RSS of one training step.");
  flags.String("model", &model_dir, "model directory", true);
  flags.Int("rows", &rows, "sequences per step");
  flags.Int("prompt-tokens", &prompt_tokens, "prompt tokens per sequence");
  flags.Int("response-tokens", &response_tokens, "response tokens per sequence");
  flags.Int("steps", &steps, "timed optimizer steps (after one warm-up step)");
  flags.String("precision", &precision, "fp32 | bf16-mixed");
  flags.Bool("checkpointing", &checkpointing, "recompute layer activations in backward");
  flags.Int("microbatch-tokens", &microbatch_tokens, "padded tokens per micro-batch; 0: all");
  bool compare_adamw = false;
  flags.Bool("compare-adamw", &compare_adamw, "also time the AdamW update alone, both ways");
  rlhf::model::DeviceFlags device_flags;
  device_flags.Register(flags);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (auto s = flags.Parse(args); !s.ok()) return Fail(s);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (precision != "fp32" && precision != "bf16-mixed") {
    return Fail(absl::InvalidArgumentError("--precision: fp32 or bf16-mixed"));
  }
  auto load = device_flags.Resolve(model_dir);
  if (!load.ok()) return Fail(load.status());

  rlhf::train::TrainerOptions options;
  options.device = load->device;
  options.optimizer.learning_rate = 1e-6;
  auto trainer = rlhf::train::PolicyTrainer::Load(model_dir, /*value_head=*/false, options);
  if (!trainer.ok()) return Fail(trainer.status());
  const double load_rss = PeakRssMiB();
  int64_t parameters = 0;
  for (const auto& [name, w] : (*trainer)->NamedWeights(false)) parameters += w.numel();

  std::mt19937 random(7);
  const int64_t vocab = (*trainer)->model().config().vocab_size;
  rlhf::train::SequenceBatch batch;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> prompt(prompt_tokens), response(response_tokens);
    for (auto& id : prompt) id = random() % vocab;
    for (auto& id : response) id = random() % vocab;
    batch.prompts.push_back(prompt);
    batch.responses.push_back(response);
  }
  const int64_t n = batch.num_response_tokens();
  torch::manual_seed(0);
  rlhf::train::PolicyGradientInputs inputs{batch, -torch::rand({n}) * 10, torch::randn({n}), {}, {},
                                           {}};
  auto config = rlhf::train::AlgorithmConfigFor("grpo");
  if (!config.ok()) return Fail(config.status());
  config->precision = precision == "bf16-mixed" ? rlhf::train::Precision::kBf16Mixed
                                                : rlhf::train::Precision::kFp32;
  config->gradient_checkpointing = checkpointing;
  config->max_tokens_per_microbatch = microbatch_tokens;

  std::vector<double> seconds;
  for (int64_t step = 0; step <= steps; ++step) {
    const auto start = std::chrono::steady_clock::now();
    auto stats = (*trainer)->TrainPolicyGradient(inputs, *config);
    if (!stats.ok()) return Fail(stats.status());
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  double timed = 0;
  for (size_t i = 1; i < seconds.size(); ++i) timed += seconds[i];
  const double peak = PeakRssMiB();
  nlohmann::json adamw;
  if (compare_adamw) {
    std::vector<torch::Tensor> params;
    for (const auto& [name, w] : (*trainer)->NamedWeights(false)) {
      params.push_back(w);
      params.back().mutable_grad() = torch::randn_like(w) * 1e-3;
    }
    torch::optim::AdamW optimizer(params, torch::optim::AdamWOptions(1e-6));
    auto time_steps = [&](const std::function<void()>& step) {
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < 2; ++i) step();
      if (load->device.is_cuda()) torch::cuda::synchronize();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 2;
    };
    torch::NoGradGuard no_grad;
    optimizer.step();  // creates the moments: allocation stays out of both timings
    adamw["torch_s"] = time_steps([&] { optimizer.step(); });
    adamw["fused_s"] = time_steps([&] { rlhf::train::FusedAdamWStep(optimizer); });
  }
  nlohmann::json out = {{"adamw", adamw},
                        {"precision", precision},
                        {"checkpointing", checkpointing},
                        {"microbatch_tokens", microbatch_tokens},
                        {"rows", rows},
                        {"tokens_per_row", prompt_tokens + response_tokens},
                        {"parameters", parameters},
                        {"load_rss_mib", load_rss},
                        {"peak_rss_mib", peak},
                        {"bytes_per_parameter", peak * 1024 * 1024 / parameters},
                        {"first_step_s", seconds[0]},
                        {"seconds_per_step", steps > 0 ? timed / steps : seconds[0]}};
  std::cout << out.dump() << std::endl;
  return 0;
}
