// The CPU build's MakeNcclBackend (nccl_backend.cc is compiled with -DRLHF_WITH_CUDA=ON).
#include "common/train/nccl_backend.h"

namespace rlhf::train {

absl::StatusOr<c10::intrusive_ptr<c10d::Backend>> MakeNcclBackend(
    const c10::intrusive_ptr<c10d::Store>&, int, int, std::chrono::milliseconds) {
  return absl::UnimplementedError(
      "NCCL: this build has no CUDA (configure with -DRLHF_WITH_CUDA=ON)");
}

}  // namespace rlhf::train
