#pragma once

// Loading Hugging Face model directories (config.json + model.safetensors or a sharded
// index, optionally generation_config.json), as transformers' from_pretrained would.

#include <filesystem>
#include <memory>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/model/causal_lm.h"
#include "common/model/sequence_classifier.h"

namespace rlhf::model {

struct LoadOptions {
  // Weights are converted to this dtype: kFloat32 (default), kBFloat16 or kFloat16.
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
  // LoadCausalLm: attach TRL's value head, read from v_head.summary.* when the checkpoint
  // has it and freshly initialised otherwise (as AutoModelForCausalLMWithValueHead does).
  bool value_head = false;
  // Seed for heads the checkpoint lacks (value head; score of a causal-LM checkpoint).
  uint64_t init_seed = 0;
};

// Loads a *ForCausalLM / GPT2LMHeadModel checkpoint. Errors (InvalidArgument unless the
// directory or a file is missing): unknown architecture, bad config field, missing tensor,
// shape mismatch, unsupported dtype, corrupt safetensors; each names the file or tensor.
// Unexpected extra tensors (attn.bias buffers, rotary inv_freq, ...) are ignored and listed
// in model->load_warnings() and on stderr.
absl::StatusOr<std::shared_ptr<CausalLm>> LoadCausalLm(const std::filesystem::path& dir,
                                                       const LoadOptions& options = {});

// Loads a *ForSequenceClassification checkpoint, or a causal-LM checkpoint whose decoder
// starts a new reward model: then score.weight is initialised N(0, initializer_range) (as
// transformers does, with a warning) and num_labels is config.json's or 1.
absl::StatusOr<std::shared_ptr<SequenceClassifier>> LoadSequenceClassifier(
    const std::filesystem::path& dir, const LoadOptions& options = {});

}  // namespace rlhf::model
