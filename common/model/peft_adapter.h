#pragma once
// PEFT 0.17 LoRA adapter directories: adapter_config.json and adapter_model.safetensors
// ("base_model.model.<module>.lora_A.weight" [r, in], "...lora_B.weight" [out, r]), the
// layout PeftModel.save_pretrained writes and PeftModel.from_pretrained reads.

#include <filesystem>
#include <string>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/model/lora.h"

namespace rlhf::model {

// Writes `dir` (created if needed) for the model's adapters, described by `options`;
// `base_model` becomes base_model_name_or_path. FailedPrecondition without adapters.
absl::Status SavePeftAdapter(torch::nn::Module& model, const std::filesystem::path& dir,
                             const LoraOptions& options, const std::string& base_model);

// Attaches the adapters `dir` describes and loads their weights. InvalidArgument naming
// the file and field for what this runtime does not run (DoRA, rank/alpha patterns,
// regex target_modules, trained biases, modules_to_save, other PEFT types), a missing or
// misshapen tensor, or one that belongs to no adapted layer.
absl::StatusOr<LoraOptions> LoadPeftAdapter(torch::nn::Module& model,
                                            const std::filesystem::path& dir);

}  // namespace rlhf::model
