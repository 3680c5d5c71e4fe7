// Built only with -DRLHF_WITH_CUDA=ON (common/train/CMakeLists.txt defines USE_C10D_NCCL
// for this file alone, so every other file compiles as in the CPU build).
#include "common/train/nccl_backend.h"

#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include "common/status/torch_status.h"

namespace rlhf::train {

absl::StatusOr<c10::intrusive_ptr<c10d::Backend>> MakeNcclBackend(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int world_size,
    std::chrono::milliseconds timeout) {
  return CatchTorchErrors(
      "creating the NCCL process group",
      [&]() -> absl::StatusOr<c10::intrusive_ptr<c10d::Backend>> {
        auto options = c10d::ProcessGroupNCCL::Options::create();
        options->timeout = timeout;
        return c10::intrusive_ptr<c10d::Backend>(
            c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world_size, options));
      });
}

}  // namespace rlhf::train
