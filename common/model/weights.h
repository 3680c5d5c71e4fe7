#pragma once

// Copying checkpoint tensors into a module's parameters and back out, by name.

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/io/safetensors.h"

namespace rlhf::model {

struct WeightLoadRules {
  // The decoder's key prefix ("model" / "transformer"). A key missing under it is also
  // looked up without it, as transformers does for checkpoints of the bare base model
  // (e.g. the original gpt2 checkpoint's "h.0.attn.c_attn.weight").
  std::string backbone_prefix;
  // Parameters the checkpoint may lack (heads it was not trained with); they keep their
  // initial values and are reported in `initialized`.
  std::function<bool(const std::string&)> may_be_missing;
  // Checkpoint keys that are expected duplicates (e.g. lm_head.weight of a tied model) and
  // not worth a warning.
  std::vector<std::string> silently_ignored;
};

struct WeightLoadReport {
  std::vector<std::string> unexpected;   // checkpoint keys no parameter took
  std::vector<std::string> initialized;  // parameters the checkpoint lacked
};

// For every named parameter of `module`: finds its tensor, checks dtype (F32/F16/BF16) and
// shape, and copies it (converting to the parameter's dtype and device). Errors name the
// tensor and `source` (the checkpoint directory): a missing tensor, a shape mismatch
// (expected and found shapes) or an unsupported dtype.
absl::StatusOr<WeightLoadReport> LoadWeights(torch::nn::Module& module,
                                             const io::SafetensorsCheckpoint& checkpoint,
                                             const std::string& source,
                                             const WeightLoadRules& rules);

// The module's parameters as CPU tensors in `dtype`, in named_parameters() order, with the
// views the safetensors writer takes. `storage` keeps the bytes alive.
struct SavedTensors {
  std::vector<torch::Tensor> storage;
  std::vector<io::TensorView> views;
};
absl::StatusOr<SavedTensors> CollectWeights(const torch::nn::Module& module,
                                            torch::ScalarType dtype);

// torch dtype <-> safetensors dtype for the floating-point types weights use.
absl::StatusOr<io::DType> ToIoDType(torch::ScalarType dtype);

}  // namespace rlhf::model
