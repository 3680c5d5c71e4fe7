#pragma once

// Mixed-precision compute for the policy: bf16 autocast on the model's device type (CPU
// or CUDA). Parameters (master weights), gradients and optimizer state stay float32;
// matmuls run in bf16 and reductions where autocast keeps float32. RAII: the previous
// autocast state of that device type comes back when the guard ends.

#include <torch/torch.h>

namespace rlhf::model {

class AutocastGuard {
 public:
  // `enabled` false: no change (fp32 compute).
  AutocastGuard(torch::Device device, bool enabled);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  at::DeviceType device_type_ = at::kCPU;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

// Whether autocast is on for `device`'s type in this thread, and at which dtype.
struct AutocastState {
  bool enabled = false;
  at::ScalarType dtype = at::kBFloat16;
};
AutocastState CurrentAutocast(torch::Device device);

}  // namespace rlhf::model
