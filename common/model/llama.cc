#include "common/model/llama.h"

#include <cmath>

#include "common/model/dense.h"
#include "common/model/layer_checkpoint.h"
#include "common/model/rope.h"

namespace rlhf::model {
namespace {

LinearLayer MakeLinear(int64_t in, int64_t out, bool bias) { return LinearLayer(in, out, bias); }

torch::Tensor Project(LinearLayer& linear, const torch::Tensor& x) { return linear(x); }

}  // namespace

RmsNormImpl::RmsNormImpl(int64_t hidden_size, double eps) : eps_(eps) {
  weight_ = register_parameter("weight", torch::ones({hidden_size}));
}

torch::Tensor RmsNormImpl::forward(const torch::Tensor& x) {
  // LlamaRMSNorm.forward
  torch::Tensor hidden = x.to(torch::kFloat32);
  torch::Tensor variance = hidden.pow(2).mean(-1, /*keepdim=*/true);
  hidden = hidden * torch::rsqrt(variance + eps_);
  return weight_ * hidden.to(x.scalar_type());
}

LlamaAttentionImpl::LlamaAttentionImpl(const ModelConfig& config, int64_t layer_index)
    : layer_index_(layer_index),
      num_heads_(config.num_heads),
      num_kv_heads_(config.num_kv_heads),
      head_dim_(config.head_dim),
      sliding_window_(config.sliding_windows.at(layer_index)) {
  const int64_t hidden = config.hidden_size;
  q_proj_ = register_module("q_proj", MakeLinear(hidden, num_heads_ * head_dim_, config.qkv_bias));
  k_proj_ =
      register_module("k_proj", MakeLinear(hidden, num_kv_heads_ * head_dim_, config.qkv_bias));
  v_proj_ =
      register_module("v_proj", MakeLinear(hidden, num_kv_heads_ * head_dim_, config.qkv_bias));
  o_proj_ =
      register_module("o_proj", MakeLinear(num_heads_ * head_dim_, hidden, config.o_proj_bias));
}

torch::Tensor LlamaAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                          const torch::Tensor& sin,
                                          const AttentionContext& context) {
  const int64_t batch = x.size(0);
  const int64_t tokens = x.size(1);
  torch::Tensor query = ApplyRope(
      Project(q_proj_, x).view({batch, tokens, num_heads_, head_dim_}).transpose(1, 2), cos, sin);
  torch::Tensor key =
      ApplyRope(Project(k_proj_, x).view({batch, tokens, num_kv_heads_, head_dim_}).transpose(1, 2),
                cos, sin);
  torch::Tensor value =
      Project(v_proj_, x).view({batch, tokens, num_kv_heads_, head_dim_}).transpose(1, 2);
  if (context.cache != nullptr) {
    std::tie(key, value) = context.cache->Append(layer_index_, key, value);
  }
  // LlamaAttention.scaling = head_dim ** -0.5
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  return Project(o_proj_, Attend(query, key, value, context, sliding_window_, scale));
}

LlamaMlpImpl::LlamaMlpImpl(const ModelConfig& config) : activation_(config.hidden_act) {
  const int64_t hidden = config.hidden_size;
  const int64_t inner = config.intermediate_size;
  gate_proj_ = register_module("gate_proj", MakeLinear(hidden, inner, config.mlp_bias));
  up_proj_ = register_module("up_proj", MakeLinear(hidden, inner, config.mlp_bias));
  down_proj_ = register_module("down_proj", MakeLinear(inner, hidden, config.mlp_bias));
}

torch::Tensor LlamaMlpImpl::forward(const torch::Tensor& x) {
  return Project(down_proj_, Activate(Project(gate_proj_, x), activation_) * Project(up_proj_, x));
}

LlamaDecoderLayerImpl::LlamaDecoderLayerImpl(const ModelConfig& config, int64_t layer_index) {
  self_attn_ = register_module("self_attn", LlamaAttention(config, layer_index));
  mlp_ = register_module("mlp", LlamaMlp(config));
  input_layernorm_ =
      register_module("input_layernorm", RmsNorm(config.hidden_size, config.norm_eps));
  post_attention_layernorm_ =
      register_module("post_attention_layernorm", RmsNorm(config.hidden_size, config.norm_eps));
}

torch::Tensor LlamaDecoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& cos,
                                             const torch::Tensor& sin,
                                             const AttentionContext& context) {
  torch::Tensor hidden = x + self_attn_(input_layernorm_(x), cos, sin, context);
  return hidden + mlp_(post_attention_layernorm_(hidden));
}

LlamaModelImpl::LlamaModelImpl(const ModelConfig& config) {
  embed_tokens_ =
      register_module("embed_tokens", torch::nn::Embedding(config.vocab_size, config.hidden_size));
  torch::nn::ModuleList layers;
  for (int64_t i = 0; i < config.num_layers; ++i) {
    layers_.push_back(LlamaDecoderLayer(config, i));
    layers->push_back(layers_.back());
  }
  register_module("layers", layers);
  norm_ = register_module("norm", RmsNorm(config.hidden_size, config.norm_eps));
  // Kept out of the module's buffers so Module::to(kBFloat16) cannot round it: transformers
  // computes cos/sin from a float32 inv_freq (LlamaRotaryEmbedding.forward).
  inv_freq_ = ComputeRopeInverseFrequencies(config);
}

torch::Tensor LlamaModelImpl::Forward(const torch::Tensor& input_ids,
                                      const AttentionContext& context) {
  torch::Tensor hidden = embed_tokens_(input_ids);
  if (inv_freq_.device() != hidden.device()) inv_freq_ = inv_freq_.to(hidden.device());
  auto [cos, sin] = RopeCosSin(inv_freq_, context.position_ids, hidden.scalar_type());
  const bool checkpoint = CheckpointLayers(context);
  for (LlamaDecoderLayer& layer : layers_) {
    if (checkpoint) {
      hidden = CheckpointedLayer(
          [layer, cos, sin, context](const torch::Tensor& x) mutable {
            return layer->forward(x, cos, sin, context);
          },
          hidden);
    } else {
      hidden = layer(hidden, cos, sin, context);
    }
  }
  if (context.cache != nullptr) context.cache->Advance(input_ids.size(1));
  return norm_(hidden);
}

}  // namespace rlhf::model
