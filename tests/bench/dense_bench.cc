// The few-row dense kernels (common/model/dense.h) against the torch ops transformers
// calls (torch.addmm for GPT-2's Conv1D, F.linear for Llama's Linear and every lm_head),
// on the matrices of one GPT-2-small decode step: 12 layers of Conv1D weights (340 MB)
// plus the 50257 x 768 lm_head (154 MB), all fp32, more than the CPU's caches hold.
// For each row count prints the time of one step's products with torch, with the few-row
// kernels alone, and with what the model runs (rlhf::model::Linear / AddmmInOut: the
// kernels where this machine's calibration measured them faster, torch elsewhere; see
// common/model/dense_calibration.h), and the ratios torch time / kernel time and torch
// time / model time (> 1: faster than torch). The model's ratio must not fall below 1
// (within timing noise) on any CPU.
//
//   build/bench/dense_bench [--rows 1,2,4,8,16,32,64,128] [--repeats 5] [--threads N]

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <limits>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "common/cli/flags.h"
#include "common/model/dense.h"
#include "common/model/dense_calibration.h"

namespace {

using rlhf::model::FewRowAddmmInOut;
using rlhf::model::FewRowLinear;

using rlhf::model::DenseLayout;
using rlhf::model::FewRowKernelWins;

enum class Side { kTorch, kKernel, kModel };

struct Layer {
  torch::Tensor weight;  // [in, out] for Conv1D, [out, in] for Linear
  torch::Tensor bias;
  bool in_out;
};

double BestSeconds(int64_t repeats, const std::function<void()>& fn) {
  fn();  // warm-up
  double best = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// Which path the model takes for the layers of `layout` at `rows`: "kernel", "torch" or
// "mixed" (per shape).
template <typename Layers>
std::string PathOf(const Layers& layers, DenseLayout layout, int64_t rows) {
  int kernel = 0, torch_path = 0;
  for (const auto& layer : layers) {
    if ((layout == DenseLayout::kAddmm) != layer.in_out) continue;
    (FewRowKernelWins(layout, layer.weight, layer.bias, rows) ? kernel : torch_path)++;
  }
  return kernel && torch_path ? "mixed" : kernel ? "kernel" : "torch";
}

}  // namespace

int main(int argc, char** argv) {
  std::string rows_list = "1,2,4,8,16,32,64,128";
  int64_t repeats = 5, threads = 0;
  rlhf::cli::FlagSet flags("dense_bench",
                           "Few-row dense kernels vs torch on GPT-2-small's weights.");
  flags.String("rows", &rows_list, "comma-separated row counts (sequences in a decode step)");
  flags.Int("repeats", &repeats, "timed runs per row count and side; the fastest is kept");
  flags.Int("threads", &threads, "torch intra-op threads (0: torch's default)");
  std::vector<std::string> args(argv + 1, argv + argc);
  if (absl::Status s = flags.Parse(args); !s.ok()) {
    std::fprintf(stderr, "dense_bench: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (flags.help_requested()) {
    std::printf("%s", flags.Usage().c_str());
    return 0;
  }
  if (threads > 0) at::set_num_threads(static_cast<int>(threads));
  std::vector<int64_t> row_counts;
  for (absl::string_view part : absl::StrSplit(rows_list, ',')) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 1) {
      std::fprintf(stderr, "dense_bench: --rows: '%s' is not a positive integer\n",
                   std::string(part).c_str());
      return 2;
    }
    row_counts.push_back(n);
  }

  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  constexpr int64_t kHidden = 768, kLayers = 12, kVocab = 50257;
  std::vector<Layer> layers;
  double bytes = 0;
  auto add = [&](int64_t in, int64_t out, bool in_out, bool bias) {
    torch::Tensor w = in_out ? torch::randn({in, out}) * 0.02 : torch::randn({out, in}) * 0.02;
    layers.push_back({w, bias ? torch::randn({out}) * 0.02 : torch::Tensor(), in_out});
    bytes += static_cast<double>(w.numel()) * 4;
  };
  for (int64_t l = 0; l < kLayers; ++l) {
    add(kHidden, 3 * kHidden, true, true);  // attn.c_attn
    add(kHidden, kHidden, true, true);      // attn.c_proj
    add(kHidden, 4 * kHidden, true, true);  // mlp.c_fc
    add(4 * kHidden, kHidden, true, true);  // mlp.c_proj
  }
  add(kHidden, kVocab, false, false);  // lm_head (tied wte)

  std::printf("one GPT-2-small decode step's products: %.0f MB fp32 weights, %d threads\n",
              bytes / 1e6, at::get_num_threads());
  std::printf("%5s %9s %10s %9s %11s %12s %8s %10s  %s\n", "rows", "torch ms", "kernel ms",
              "model ms", "torch GB/s", "kernel ratio", "model", "max |diff|",
              "model path (Conv1D, Linear)");
  for (int64_t rows : row_counts) {
    std::vector<torch::Tensor> inputs;
    for (const Layer& layer : layers) {
      const int64_t in = layer.in_out ? layer.weight.size(0) : layer.weight.size(1);
      inputs.push_back(torch::randn({rows, in}));
    }
    auto product = [&](size_t i, Side side) {
      const Layer& layer = layers[i];
      const torch::Tensor& x = inputs[i];
      if (layer.in_out) {
        switch (side) {
          case Side::kTorch:
            return torch::addmm(layer.bias, x, layer.weight);
          case Side::kKernel:
            return FewRowAddmmInOut(x, layer.weight, layer.bias);
          case Side::kModel:
            return rlhf::model::AddmmInOut(x, layer.weight, layer.bias);
        }
      }
      switch (side) {
        case Side::kTorch:
          return torch::nn::functional::linear(x, layer.weight, layer.bias);
        case Side::kKernel:
          return FewRowLinear(x, layer.weight, layer.bias);
        case Side::kModel:
          break;
      }
      return rlhf::model::Linear(x, layer.weight, layer.bias);
    };
    auto run = [&](Side side) {
      for (size_t i = 0; i < layers.size(); ++i) product(i, side);
    };
    double max_diff = 0;
    for (size_t i = 0; i < layers.size(); ++i) {
      max_diff = std::max(
          max_diff,
          (product(i, Side::kKernel) - product(i, Side::kTorch)).abs().max().item<double>());
    }
    for (const Layer& layer : layers) {  // calibrate (or read the cache) before timing
      FewRowKernelWins(layer.in_out ? DenseLayout::kAddmm : DenseLayout::kLinear, layer.weight,
                       layer.bias, rows);
    }
    // Alternate the sides so a load spike on a shared machine hits all three.
    double torch_s = std::numeric_limits<double>::infinity(), kernel_s = torch_s, model_s = torch_s;
    for (int64_t round = 0; round < 2; ++round) {
      torch_s = std::min(torch_s, BestSeconds(repeats, [&] { run(Side::kTorch); }));
      kernel_s = std::min(kernel_s, BestSeconds(repeats, [&] { run(Side::kKernel); }));
      model_s = std::min(model_s, BestSeconds(repeats, [&] { run(Side::kModel); }));
    }
    std::printf("%5ld %9.2f %10.2f %9.2f %11.1f %11.2fx %7.2fx %10.1e  %s, %s\n",
                static_cast<long>(rows), torch_s * 1e3, kernel_s * 1e3, model_s * 1e3,
                bytes / torch_s / 1e9, torch_s / kernel_s, torch_s / model_s, max_diff,
                PathOf(layers, DenseLayout::kAddmm, rows).c_str(),
                PathOf(layers, DenseLayout::kLinear, rows).c_str());
  }
  return 0;
}
