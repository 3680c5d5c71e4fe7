#pragma once

// Means of per-step training statistics over the optimizer steps of one Train call.

#include <cstdint>
#include <map>
#include <string>

#include <torch/torch.h>

namespace rlhf::train {

class StatsAccumulator {
 public:
  void Add(const std::string& name, const torch::Tensor& value) {
    Add(name,
        value.defined() ? value.detach().to(torch::kCPU, torch::kDouble).item<double>() : 0.0);
  }
  void Add(const std::string& name, double value) { sums_[name] += value; }
  void CountStep() { ++steps_; }
  int64_t steps() const { return steps_; }
  std::map<std::string, double> Finish() const {
    std::map<std::string, double> out;
    for (const auto& [name, sum] : sums_) out[name] = steps_ > 0 ? sum / steps_ : sum;
    out["steps"] = steps_;
    return out;
  }

 private:
  std::map<std::string, double> sums_;
  int64_t steps_ = 0;
};

}  // namespace rlhf::train
