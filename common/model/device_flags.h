#pragma once
// --device and --dtype for every binary that holds a model (rlhf-actor, -rollout,
// -reference, -reward; rlhf local / generate / eval):
//   --device cpu | cuda | cuda:N   default cpu; a bare "cuda" on a data-parallel actor rank
//                                  means cuda:LOCAL_RANK (the torchrun convention)
//   --dtype float32 | bfloat16 | float16   for frozen and sampling copies; default: the
//                                  checkpoint's dtype on CUDA, float32 on the CPU
// Resolve() checks the device exists here before any model is loaded: CUDA asked of a
// build or machine without it is one InvalidArgument line naming the flag (exit 2).

#include <cstdint>
#include <filesystem>
#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/cli/flags.h"
#include "common/model/loader.h"

namespace rlhf::model {

// "cpu", "cuda", "cuda:N" -> a device; a bare "cuda" is cuda:local_rank when local_rank
// >= 0, else cuda:0. InvalidArgument naming the text otherwise.
absl::StatusOr<torch::Device> ParseDevice(const std::string& text, int64_t local_rank = -1);

// OK for the CPU; for CUDA when this build links LibTorch's CUDA libraries and a GPU with
// that index is visible. InvalidArgument saying which is missing otherwise.
absl::Status CheckDeviceAvailable(const torch::Device& device);

// "float32" | "bfloat16" | "float16" (and "fp32", "bf16", "fp16") -> a dtype.
absl::StatusOr<torch::Dtype> ParseDtype(const std::string& text);

// The dtype a checkpoint's config.json names ("dtype", else "torch_dtype"); float32
// when it names none or one we do not load.
torch::Dtype CheckpointDtype(const std::filesystem::path& model_dir);

// Fixes this process's compute threads at their current number and turns MKL's dynamic
// threading off, as torch.set_num_threads does: with MKL_DYNAMIC on (MKL's default, and a
// C++ process that never calls set_num_threads keeps it), MKL may run a GEMM on fewer
// threads than asked, splitting the sum differently, so the same product can differ in its
// last bits from call to call on a loaded machine. Idempotent; model loading calls it.
void PinComputeThreads();
// "float32", "bfloat16", "float16" (config.json's spelling).
std::string DtypeName(torch::Dtype dtype);

struct DeviceFlags {
  std::string device = "cpu";
  std::string dtype;  // empty: the default above

  // `with_dtype`: false for the actor, which trains in float32 master weights.
  void Register(cli::FlagSet& flags, bool with_dtype = true);
  // Load options for `model_dir` on the flags' device and dtype; `local_rank` as in
  // ParseDevice. InvalidArgument naming --device or --dtype.
  absl::StatusOr<LoadOptions> Resolve(const std::filesystem::path& model_dir,
                                      int64_t local_rank = -1) const;
};

}  // namespace rlhf::model
