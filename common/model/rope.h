#pragma once

// Rotary position embeddings as transformers' LlamaRotaryEmbedding computes them
// (modeling_rope_utils.py and modeling_llama.py, transformers 4.57).

#include <utility>

#include <torch/torch.h>

#include "common/model/config.h"

namespace rlhf::model {

// inv_freq [head_dim / 2] in float32 for rope.type "default", "linear" or "llama3"
// (_compute_default_rope_parameters, _compute_linear_scaling_rope_parameters,
// _compute_llama3_parameters), op for op so the values match bit for bit.
torch::Tensor ComputeRopeInverseFrequencies(const ModelConfig& config);

// cos and sin [B, T, head_dim] for position_ids [B, T], computed in float32 and cast to
// `dtype` (LlamaRotaryEmbedding.forward).
std::pair<torch::Tensor, torch::Tensor> RopeCosSin(const torch::Tensor& inv_freq,
                                                   const torch::Tensor& position_ids,
                                                   torch::ScalarType dtype);

// x * cos + rotate_half(x) * sin for x [B, heads, T, head_dim] and cos/sin [B, T, head_dim]
// (apply_rotary_pos_emb with unsqueeze_dim=1).
torch::Tensor ApplyRope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

}  // namespace rlhf::model
