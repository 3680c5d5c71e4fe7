// PPO loss step timing: token logprobs + entropy from logits (chunked, common/algo), policy +
// value + entropy-bonus loss, backward into a [B, T, V] float32 logits leaf and a [B, T]
// values leaf. Driven by tests/bench/ppo_loss_bench.py, which times the same computation
// written with TRL's functions in the same run and prints the ratio.
//
// Usage: ppo_loss_bench [--batch 32] [--seq 512] [--vocab 32000] [--repeats 3]
//                       [--threads N] [--chunk 0] [--seed 0] [--interactive]
// Prints one JSON line: {"impl": "rlhf", "seconds": best, "threads": ..., "loss": ...}.
// --interactive: prints "ready", then runs one step per "step" line on stdin (printing
// {"seconds": ...}) until EOF or another line, then prints the summary line.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#include <torch/torch.h>

#include "common/algo/logprobs.h"
#include "common/algo/ppo.h"

namespace {

struct Args {
  int64_t batch = 32, seq = 512, vocab = 32000, repeats = 3, threads = 0, chunk = 0, seed = 0;
  bool interactive = false;
};

bool Parse(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help") return false;
    if (flag == "--interactive") {
      a->interactive = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const int64_t value = std::atoll(argv[++i]);
    if (flag == "--batch")
      a->batch = value;
    else if (flag == "--seq")
      a->seq = value;
    else if (flag == "--vocab")
      a->vocab = value;
    else if (flag == "--repeats")
      a->repeats = value;
    else if (flag == "--threads")
      a->threads = value;
    else if (flag == "--chunk")
      a->chunk = value;
    else if (flag == "--seed")
      a->seed = value;
    else
      return false;
  }
  return a->batch > 0 && a->seq > 0 && a->vocab > 0 && a->repeats > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: ppo_loss_bench [--batch B] [--seq T] [--vocab V] [--repeats N] "
                 "[--threads N] [--chunk C] [--seed S] [--interactive]\n");
    return 2;
  }
  if (args.threads > 0) torch::set_num_threads(static_cast<int>(args.threads));
  using namespace rlhf::algo;
  const int64_t B = args.batch, T = args.seq, V = args.vocab;
  // Inputs drawn in the same order as ppo_loss_bench.py (same CPU generator, same seed).
  torch::manual_seed(args.seed);
  torch::Tensor logits = torch::randn({B, T, V}).requires_grad_(true);
  const torch::Tensor targets = torch::randint(0, V, {B, T});
  const torch::Tensor lengths = torch::randint(1, T + 1, {B});
  const torch::Tensor old_logprobs = -torch::rand({B, T}) * 12;
  const torch::Tensor advantages = torch::randn({B, T});
  torch::Tensor values = torch::randn({B, T}).requires_grad_(true);
  const torch::Tensor old_values = torch::randn({B, T});
  const torch::Tensor returns = torch::randn({B, T});
  const torch::Tensor mask = torch::arange(T).unsqueeze(0) < lengths.unsqueeze(1);
  const torch::Tensor value_mask = torch::arange(T).unsqueeze(0) < (lengths + 1).unsqueeze(1);

  PpoLossOptions options;  // TRL defaults: cliprange 0.2, cliprange_value 0.2, vf_coef 0.1
  options.entropy_coef = 0.01;
  LogprobOptions lp_options;
  lp_options.chunk = args.chunk;

  // One timed step; returns seconds, or a negative value after printing an error.
  double loss_value = 0;
  const auto step = [&]() -> double {
    logits.mutable_grad() = torch::Tensor();
    values.mutable_grad() = torch::Tensor();
    const auto start = std::chrono::steady_clock::now();
    auto lp = LogprobsAndEntropyFromLogits(logits, targets, lp_options);
    if (!lp.ok()) {
      std::fprintf(stderr, "%s\n", lp.status().ToString().c_str());
      return -1;
    }
    PpoLossInputs in{lp->logprobs, old_logprobs, advantages, mask,       values,
                     old_values,   returns,      value_mask, lp->entropy};
    auto loss = PpoLoss(in, options);
    if (!loss.ok()) {
      std::fprintf(stderr, "%s\n", loss.status().ToString().c_str());
      return -1;
    }
    loss->loss.backward();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    loss_value = loss->loss.item<double>();
    return seconds;
  };

  double best = std::numeric_limits<double>::infinity();
  if (args.interactive) {
    // The driver interleaves our steps with its own, so both see the same machine load.
    std::printf("ready\n");
    std::fflush(stdout);
    char line[64];
    while (std::fgets(line, sizeof(line), stdin) != nullptr && std::strncmp(line, "step", 4) == 0) {
      const double seconds = step();
      if (seconds < 0) return 1;
      best = std::min(best, seconds);
      std::printf("{\"seconds\": %.6f}\n", seconds);
      std::fflush(stdout);
    }
  } else {
    for (int64_t r = 0; r <= args.repeats; ++r) {  // r == 0 warms up
      const double seconds = step();
      if (seconds < 0) return 1;
      if (r > 0) best = std::min(best, seconds);
    }
  }
  std::printf(
      "{\"impl\": \"rlhf\", \"batch\": %ld, \"seq\": %ld, \"vocab\": %ld, \"seconds\": %.6f, "
      "\"threads\": %d, \"loss\": %.9g, \"grad_abs_sum\": %.9g}\n",
      static_cast<long>(B), static_cast<long>(T), static_cast<long>(V), best,
      torch::get_num_threads(), loss_value, logits.grad().abs().sum().item<double>());
  return 0;
}
