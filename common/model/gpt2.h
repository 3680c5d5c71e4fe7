#pragma once

// GPT-2 decoder modules, parameter names as in transformers' modeling_gpt2.py so that
// named_parameters() are the checkpoint keys (transformer.h.0.attn.c_attn.weight, ...).

#include <torch/torch.h>

#include "common/model/decoder.h"
#include "common/model/lora_layer.h"

namespace rlhf::model {

// transformers' pytorch_utils.Conv1D: a linear layer whose weight is stored [in, out].
class Conv1DImpl : public LoraLayer {
 public:
  Conv1DImpl(int64_t in_features, int64_t out_features);
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_features() const override { return weight_.size(0); }
  int64_t out_features() const override { return weight_.size(1); }
  bool fan_in_fan_out() const override { return true; }
  const torch::Tensor& base_weight() const override { return weight_; }

 private:
  torch::Tensor weight_;
  torch::Tensor bias_;
};
TORCH_MODULE(Conv1D);

class Gpt2AttentionImpl : public torch::nn::Module {
 public:
  Gpt2AttentionImpl(const ModelConfig& config, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& context);

 private:
  int64_t layer_index_;
  int64_t num_heads_;
  int64_t head_dim_;
  double scale_;
  Conv1D c_attn_{nullptr};
  Conv1D c_proj_{nullptr};
};
TORCH_MODULE(Gpt2Attention);

class Gpt2MlpImpl : public torch::nn::Module {
 public:
  explicit Gpt2MlpImpl(const ModelConfig& config);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  std::string activation_;
  Conv1D c_fc_{nullptr};
  Conv1D c_proj_{nullptr};
};
TORCH_MODULE(Gpt2Mlp);

class Gpt2BlockImpl : public torch::nn::Module {
 public:
  Gpt2BlockImpl(const ModelConfig& config, int64_t layer_index);
  torch::Tensor forward(const torch::Tensor& x, const AttentionContext& context);

 private:
  torch::nn::LayerNorm ln_1_{nullptr};
  Gpt2Attention attn_{nullptr};
  torch::nn::LayerNorm ln_2_{nullptr};
  Gpt2Mlp mlp_{nullptr};
};
TORCH_MODULE(Gpt2Block);

class Gpt2ModelImpl : public DecoderImpl {
 public:
  explicit Gpt2ModelImpl(const ModelConfig& config);
  torch::Tensor Forward(const torch::Tensor& input_ids, const AttentionContext& context) override;
  torch::Tensor EmbeddingWeight() override { return wte_->weight; }

 private:
  torch::nn::Embedding wte_{nullptr};
  torch::nn::Embedding wpe_{nullptr};
  std::vector<Gpt2Block> h_;
  torch::nn::LayerNorm ln_f_{nullptr};
};
TORCH_MODULE(Gpt2Model);

}  // namespace rlhf::model
