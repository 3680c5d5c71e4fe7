#pragma once

// Llama-family decoder modules (Llama, Qwen2, Mistral), parameter names as in
// transformers' modeling_llama.py / modeling_qwen2.py / modeling_mistral.py
// (model.layers.0.self_attn.q_proj.weight, ...).

#include <torch/torch.h>

#include "common/model/decoder.h"
#include "common/model/lora_layer.h"

namespace rlhf::model {

// LlamaRMSNorm: normalises in float32 and casts back before scaling by the weight.
class RmsNormImpl : public torch::nn::Module {
 public:
  RmsNormImpl(int64_t hidden_size, double eps);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  double eps_;
  torch::Tensor weight_;
};
TORCH_MODULE(RmsNorm);

// Multi-head or grouped-query attention with rotary positions.
class LlamaAttentionImpl : public torch::nn::Module {
 public:
  LlamaAttentionImpl(const ModelConfig& config, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const AttentionContext& context);

 private:
  int64_t layer_index_;
  int64_t num_heads_;
  int64_t num_kv_heads_;
  int64_t head_dim_;
  int64_t sliding_window_;
  LinearLayer q_proj_{nullptr};
  LinearLayer k_proj_{nullptr};
  LinearLayer v_proj_{nullptr};
  LinearLayer o_proj_{nullptr};
};
TORCH_MODULE(LlamaAttention);

// SwiGLU: down_proj(act(gate_proj(x)) * up_proj(x)).
class LlamaMlpImpl : public torch::nn::Module {
 public:
  explicit LlamaMlpImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::string activation_;
  LinearLayer gate_proj_{nullptr};
  LinearLayer up_proj_{nullptr};
  LinearLayer down_proj_{nullptr};
};
TORCH_MODULE(LlamaMlp);

class LlamaDecoderLayerImpl : public torch::nn::Module {
 public:
  LlamaDecoderLayerImpl(const ModelConfig& config, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                        const AttentionContext& context);

 private:
  LlamaAttention self_attn_{nullptr};
  LlamaMlp mlp_{nullptr};
  RmsNorm input_layernorm_{nullptr};
  RmsNorm post_attention_layernorm_{nullptr};
};
TORCH_MODULE(LlamaDecoderLayer);

class LlamaModelImpl : public DecoderImpl {
 public:
  explicit LlamaModelImpl(const ModelConfig& config);
  torch::Tensor Forward(const torch::Tensor& input_ids, const AttentionContext& context) override;
  torch::Tensor EmbeddingWeight() override { return embed_tokens_->weight; }

 private:
  torch::nn::Embedding embed_tokens_{nullptr};
  std::vector<LlamaDecoderLayer> layers_;
  RmsNorm norm_{nullptr};
  torch::Tensor inv_freq_;  // float32 [head_dim / 2], as in LlamaRotaryEmbedding
};
TORCH_MODULE(LlamaModel);

}  // namespace rlhf::model
