#include "common/model/value_head.h"

namespace rlhf::model {

ValueHeadImpl::ValueHeadImpl(int64_t hidden_size) {
  summary_ = register_module("summary", torch::nn::Linear(hidden_size, 1));
}

torch::Tensor ValueHeadImpl::forward(const torch::Tensor& hidden) {
  // ValueHead.forward: cast the hidden states to the head's dtype, then summary.
  torch::Tensor input = hidden.to(summary_->weight.scalar_type());
  return summary_(input).squeeze(-1);
}

}  // namespace rlhf::model
