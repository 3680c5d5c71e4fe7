// PolicyTrainer::BroadcastState: rank 0's training state to the other ranks of a
// data-parallel group, in two collectives: a header of counters, then every tensor.

#include "common/status/torch_status.h"
#include "common/train/data_parallel_group.h"
#include "common/train/policy_trainer.h"

namespace rlhf::train {

absl::Status PolicyTrainer::BroadcastState(DataParallelGroup& group) {
  // Header: policy_version, then per parameter its AdamW step count (-1: no state yet).
  const int64_t n = static_cast<int64_t>(parameters_.size());
  std::vector<torch::Tensor> header = {torch::full({1 + n}, -1, torch::kInt64)};
  if (group.rank() == 0) {
    header[0][0] = policy_version_;
    for (int64_t i = 0; i < n; ++i) {
      auto it = optimizer_->state().find(parameters_[i].second.unsafeGetTensorImpl());
      if (it != optimizer_->state().end()) {
        header[0][1 + i] = static_cast<torch::optim::AdamWParamState&>(*it->second).step();
      }
    }
  }
  if (auto s = group.BroadcastTensors(header); !s.ok()) return s;
  return CatchTorchErrors("BroadcastState", [&]() -> absl::Status {
    // Every rank now holds the same layout: the weights, then the moments rank 0 has.
    std::vector<torch::Tensor> tensors;
    for (auto& [name, param] : parameters_) tensors.push_back(param);
    if (group.rank() != 0) optimizer_->state().clear();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t step = header[0][1 + i].item<int64_t>();
      if (step < 0) continue;
      torch::Tensor& param = parameters_[i].second;
      void* key = param.unsafeGetTensorImpl();
      if (group.rank() != 0) {
        auto adam = std::make_unique<torch::optim::AdamWParamState>();
        adam->step(step);
        adam->exp_avg(torch::zeros_like(param, torch::MemoryFormat::Contiguous));
        adam->exp_avg_sq(torch::zeros_like(param, torch::MemoryFormat::Contiguous));
        optimizer_->state()[key] = std::move(adam);
      }
      auto& adam = static_cast<torch::optim::AdamWParamState&>(*optimizer_->state().at(key));
      tensors.push_back(adam.exp_avg());
      tensors.push_back(adam.exp_avg_sq());
    }
    if (auto s = group.BroadcastTensors(tensors); !s.ok()) return s;
    optimizer_->zero_grad();
    policy_version_ = header[0][0].item<int64_t>();
    return absl::OkStatus();
  });
}

}  // namespace rlhf::train
