#pragma once

// TRL's ValueHead (trl/models/modeling_value_head.py): a Linear(hidden, 1) with bias, named
// "summary" so that AutoModelForCausalLMWithValueHead checkpoints' keys are
// v_head.summary.weight / v_head.summary.bias. TRL's dropout (summary_dropout_prob) is
// not applied: PPO here runs the value head deterministically.

#include <torch/torch.h>

namespace rlhf::model {

class ValueHeadImpl : public torch::nn::Module {
 public:
  explicit ValueHeadImpl(int64_t hidden_size);
  // hidden [B, T, hidden] -> values [B, T], computed in the head's dtype as TRL does.
  torch::Tensor forward(const torch::Tensor& hidden);
  torch::nn::Linear& summary() { return summary_; }

 private:
  torch::nn::Linear summary_{nullptr};
};
TORCH_MODULE(ValueHead);

}  // namespace rlhf::model
