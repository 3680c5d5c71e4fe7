#pragma once
// LoRA adapters on a model's dense layers, chosen by name as PEFT 0.17 chooses them
// (`target_modules`: a layer is adapted when its module name equals a target or ends with
// "." + target, e.g. "q_proj" or "c_attn"), and the adapted model's weights merged for
// export or for a rollout that holds plain weights.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/model/lora_layer.h"

namespace rlhf::model {

struct LoraOptions {
  int64_t rank = 8;
  double alpha = 8;
  double dropout = 0.0;
  std::vector<std::string> target_modules;
  bool use_rslora = false;  // scale alpha / sqrt(rank) instead of alpha / rank
  uint64_t seed = 0;        // the A matrices' initialisation
  double Scale() const;
};

// Attaches an adapter to every matching dense layer (in module order, one generator seeded
// with options.seed); returns the adapted module names. InvalidArgument for rank < 1,
// alpha <= 0, dropout outside [0, 1), no targets, or a target that matches no dense layer
// (naming it and the layers there are).
absl::StatusOr<std::vector<std::string>> AttachLora(torch::nn::Module& model,
                                                    const LoraOptions& options);

// The adapted layers by module name, in module order.
std::vector<std::pair<std::string, LoraLayer*>> LoraLayers(torch::nn::Module& model);

// `named_weights` (Hugging Face names, e.g. from the trainer) with each adapted layer's
// weight replaced by weight + its adapter's delta (new tensors; the model is unchanged).
std::vector<std::pair<std::string, torch::Tensor>> MergeLoraWeights(
    torch::nn::Module& model, std::vector<std::pair<std::string, torch::Tensor>> named_weights);

}  // namespace rlhf::model
