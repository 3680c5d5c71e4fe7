#pragma once
// The NCCL backend of a data-parallel group whose ranks train on CUDA devices. Compiled
// from nccl_backend.cc in a build with -DRLHF_WITH_CUDA=ON (against the CUDA 12 and NCCL
// headers of the torch wheel's nvidia packages, cmake/TorchCuda.cmake); a CPU build
// compiles nccl_backend_stub.cc, which refuses.

#include <chrono>
#include <cstdint>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "absl/status/statusor.h"

namespace rlhf::train {

// ProcessGroupNCCL over `store` (rank, world size, per-collective timeout). Unimplemented
// in a build without CUDA.
absl::StatusOr<c10::intrusive_ptr<c10d::Backend>> MakeNcclBackend(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int world_size,
    std::chrono::milliseconds timeout);

}  // namespace rlhf::train
