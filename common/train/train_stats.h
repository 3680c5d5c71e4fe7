#pragma once

// Means of per-step training statistics over the optimizer steps of one Train call. A
// step cut into micro-batches adds each micro-batch's statistics times its share
// (set_weight), so a step's value is the share-weighted mean of its micro-batches.

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
  void Add(const std::string& name, double value) { sums_[name] += weight_ * value; }
  void set_weight(double weight) { weight_ = weight; }
  // A count (not a mean): micro-batches add up to the step's, whatever the weight.
  void AddCount(const std::string& name, const torch::Tensor& value) {
    sums_[name] += value.detach().to(torch::kCPU, torch::kDouble).item<double>();
  }
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
  double weight_ = 1.0;
};

}  // namespace rlhf::train
