#pragma once

// Data-parallel gradient averaging. Each actor rank trains on its own shard of a batch and
// calls AllReduceMean on its gradients before clipping and the optimizer step, so every
// rank takes the identical step (DESIGN.md: c10d, Gloo on CPU, NCCL on GPU).
//
// Implementations: SingleRankAllReducer below, and DataParallelGroup
// (data_parallel_group.h: c10d Gloo).

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/torch.h>

#include "absl/status/status.h"

namespace rlhf::train {

// Implementations must be called by all ranks in the same order. Not thread-safe.
class GradientAllReducer {
 public:
  virtual ~GradientAllReducer() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t world_size() const = 0;
  // Replaces each tensor with the mean of that tensor over all ranks, in place.
  virtual absl::Status AllReduceMean(std::vector<torch::Tensor>& gradients) = 0;
};

// world_size 1: gradients are already the mean.
class SingleRankAllReducer final : public GradientAllReducer {
 public:
  int64_t rank() const override { return 0; }
  int64_t world_size() const override { return 1; }
  absl::Status AllReduceMean(std::vector<torch::Tensor>&) override { return absl::OkStatus(); }
};

}  // namespace rlhf::train
