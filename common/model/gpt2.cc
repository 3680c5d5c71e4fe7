#include "common/model/gpt2.h"

#include <cmath>

#include "common/model/dense.h"
#include "common/model/layer_checkpoint.h"

namespace rlhf::model {
namespace {

torch::nn::LayerNorm MakeLayerNorm(const ModelConfig& config) {
  return torch::nn::LayerNorm(
      torch::nn::LayerNormOptions({config.hidden_size}).eps(config.norm_eps));
}

}  // namespace

Conv1DImpl::Conv1DImpl(int64_t in_features, int64_t out_features) {
  // pytorch_utils.Conv1D.__init__: weight [nx, nf] ~ N(0, 0.02), bias zeros.
  weight_ = register_parameter("weight", torch::randn({in_features, out_features}) * 0.02);
  bias_ = register_parameter("bias", torch::zeros({out_features}));
}

torch::Tensor Conv1DImpl::forward(const torch::Tensor& x) {
  // Conv1D.forward: torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight)
  return AddLora(x, AddmmInOut(x, weight_, bias_));
}

Gpt2AttentionImpl::Gpt2AttentionImpl(const ModelConfig& config, int64_t layer_index)
    : layer_index_(layer_index), num_heads_(config.num_heads), head_dim_(config.head_dim) {
  // GPT2Attention / eager_attention_forward: divide by sqrt(head_dim) when
  // scale_attn_weights, and additionally by (layer_idx + 1) when
  // scale_attn_by_inverse_layer_idx.
  scale_ = config.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(head_dim_)) : 1.0;
  if (config.scale_attn_by_inverse_layer_idx) scale_ /= static_cast<double>(layer_index + 1);
  c_attn_ = register_module("c_attn", Conv1D(config.hidden_size, 3 * config.hidden_size));
  c_proj_ = register_module("c_proj", Conv1D(config.hidden_size, config.hidden_size));
}

torch::Tensor Gpt2AttentionImpl::forward(const torch::Tensor& x, const AttentionContext& context) {
  const int64_t batch = x.size(0);
  const int64_t tokens = x.size(1);
  // c_attn output splits into q, k, v along the last dim, each [B, T, heads * head_dim].
  std::vector<torch::Tensor> qkv =
      c_attn_(x).view({batch, tokens, 3, num_heads_, head_dim_}).unbind(2);
  torch::Tensor query = qkv[0].transpose(1, 2);
  torch::Tensor key = qkv[1].transpose(1, 2);
  torch::Tensor value = qkv[2].transpose(1, 2);
  if (context.cache != nullptr) {
    std::tie(key, value) = context.cache->Append(layer_index_, key, value);
  }
  return c_proj_(Attend(query, key, value, context, /*sliding_window=*/0, scale_));
}

Gpt2MlpImpl::Gpt2MlpImpl(const ModelConfig& config) : activation_(config.hidden_act) {
  c_fc_ = register_module("c_fc", Conv1D(config.hidden_size, config.intermediate_size));
  c_proj_ = register_module("c_proj", Conv1D(config.intermediate_size, config.hidden_size));
}

torch::Tensor Gpt2MlpImpl::forward(const torch::Tensor& x) {
  return c_proj_(Activate(c_fc_(x), activation_));
}

Gpt2BlockImpl::Gpt2BlockImpl(const ModelConfig& config, int64_t layer_index) {
  ln_1_ = register_module("ln_1", MakeLayerNorm(config));
  attn_ = register_module("attn", Gpt2Attention(config, layer_index));
  ln_2_ = register_module("ln_2", MakeLayerNorm(config));
  mlp_ = register_module("mlp", Gpt2Mlp(config));
}

torch::Tensor Gpt2BlockImpl::forward(const torch::Tensor& x, const AttentionContext& context) {
  torch::Tensor hidden = x + attn_(ln_1_(x), context);
  return hidden + mlp_(ln_2_(hidden));
}

Gpt2ModelImpl::Gpt2ModelImpl(const ModelConfig& config) {
  wte_ = register_module("wte", torch::nn::Embedding(config.vocab_size, config.hidden_size));
  wpe_ = register_module("wpe",
                         torch::nn::Embedding(config.max_position_embeddings, config.hidden_size));
  torch::nn::ModuleList layers;
  for (int64_t i = 0; i < config.num_layers; ++i) {
    h_.push_back(Gpt2Block(config, i));
    layers->push_back(h_.back());
  }
  register_module("h", layers);
  ln_f_ = register_module("ln_f", MakeLayerNorm(config));
}

torch::Tensor Gpt2ModelImpl::Forward(const torch::Tensor& input_ids,
                                     const AttentionContext& context) {
  torch::Tensor hidden = wte_(input_ids) + wpe_(context.position_ids);
  const bool checkpoint = CheckpointLayers(context);
  for (Gpt2Block& block : h_) {
    if (checkpoint) {
      hidden = CheckpointedLayer(
          [block, context](const torch::Tensor& x) mutable { return block->forward(x, context); },
          hidden);
    } else {
      hidden = block(hidden, context);
    }
  }
  if (context.cache != nullptr) context.cache->Advance(input_ids.size(1));
  return ln_f_(hidden);
}

}  // namespace rlhf::model
