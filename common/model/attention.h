#pragma once

// What the attention layers of one forward call share: positions, the SDPA mask and the
// KV cache, built once per call rather than once per layer.

#include <cstdint>
#include <optional>

#include <torch/torch.h>

#include "common/model/config.h"
#include "common/model/kv_cache.h"

namespace rlhf::model {

struct AttentionContext {
  torch::Tensor position_ids;  // [B, T] int64
  // [B, 1, T, S] bool (true: may attend) for full-attention layers; undefined when SDPA's
  // own causal flag (or no mask at all, for one new token) is enough.
  torch::Tensor full_mask;
  bool full_is_causal = false;
  // The same for sliding-window layers (window `sliding_window`); may alias the full mask
  // when the window cannot matter at this length.
  torch::Tensor sliding_mask;
  bool sliding_is_causal = false;
  int64_t sliding_window = 0;
  KvCache* cache = nullptr;  // null: attend only within this call's tokens
};

// Builds the context for input of T new tokens per row.
//
// `attention_mask` [B, past + T] (1 = real token, 0 = padding; left padding for
// generation, either side for training) covers the cache and the new tokens; pass an
// undefined tensor when no row is padded, which lets SDPA use its causal kernel.
// `position_ids` [B, T] may be undefined: then, as transformers' generate() does,
// positions are cumsum(attention_mask) - 1 (padding gets 1), or past..past+T-1.
//
// The mask follows transformers' masking_utils: causal (kv_idx <= q_idx), padding
// (padding_mask[b, kv_idx]) and, for sliding layers, kv_idx > q_idx - sliding_window,
// all in cache-index space. Unlike transformers a padding query row may also attend to
// itself, so it never has an all-masked row (whose softmax would be NaN and could leak
// through the cache); real tokens never attend to padding, so their outputs are unchanged.
AttentionContext BuildAttentionContext(const ModelConfig& config, int64_t batch, int64_t tokens,
                                       const torch::Tensor& attention_mask,
                                       const torch::Tensor& position_ids, KvCache* cache,
                                       torch::Device device);

// Scaled dot-product attention over q [B, H, T, D] and k/v [B, KVH, S, D] (KVH dividing
// H: grouped-query attention), with the mask of a layer with `sliding_window` (0: full).
// Returns [B, T, H * D].
torch::Tensor Attend(const torch::Tensor& query, const torch::Tensor& key,
                     const torch::Tensor& value, const AttentionContext& context,
                     int64_t sliding_window, double scale);

}  // namespace rlhf::model
