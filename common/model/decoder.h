#pragma once

// The decoder stack shared by the causal LM, value-head and sequence-classification
// models: GPT2Model ("transformer.*") or LlamaModel ("model.*") in transformers' terms.

#include <memory>

#include <torch/torch.h>

#include "common/model/attention.h"
#include "common/model/config.h"

namespace rlhf::model {

class DecoderImpl : public torch::nn::Module {
 public:
  // Hidden states after the final norm, [B, T, hidden], for input_ids [B, T]. Appends to
  // context.cache when it is set. Throws c10::Error on bad shapes.
  virtual torch::Tensor Forward(const torch::Tensor& input_ids,
                                const AttentionContext& context) = 0;
  // The token embedding matrix [vocab, hidden] (what a tied lm_head multiplies by).
  virtual torch::Tensor EmbeddingWeight() = 0;

  // Recompute each layer's activations in backward (layer_checkpoint.h) when autograd
  // records a forward without a KV cache; generation and inference are unaffected.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

 protected:
  // Whether this forward checkpoints its layers.
  bool CheckpointLayers(const AttentionContext& context) const {
    return gradient_checkpointing_ && context.cache == nullptr && torch::GradMode::is_enabled();
  }

 private:
  bool gradient_checkpointing_ = false;
};

// A freshly initialised decoder for `config` (weights are then loaded or initialised).
std::shared_ptr<DecoderImpl> MakeDecoder(const ModelConfig& config);

// The activation named by hidden_act / activation_function (transformers' ACT2FN).
torch::Tensor Activate(const torch::Tensor& x, const std::string& name);

}  // namespace rlhf::model
