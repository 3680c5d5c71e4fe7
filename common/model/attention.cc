#include "common/model/attention.h"

#include <algorithm>

namespace rlhf::model {
namespace {

// [B, 1, T, S] bool mask for queries at cache indices past..past+T-1.
torch::Tensor BuildMask(const torch::Tensor& key_valid, int64_t batch, int64_t past, int64_t tokens,
                        int64_t window, torch::Device device) {
  const int64_t total = past + tokens;
  auto index_options = torch::TensorOptions().dtype(torch::kInt64).device(device);
  torch::Tensor q_idx = torch::arange(past, total, index_options).view({tokens, 1});
  torch::Tensor kv_idx = torch::arange(0, total, index_options).view({1, total});
  torch::Tensor allowed = kv_idx <= q_idx;                                 // causal_mask_function
  if (window > 0) allowed = allowed.logical_and(kv_idx > q_idx - window);  // sliding overlay
  allowed = allowed.view({1, 1, tokens, total});
  if (key_valid.defined()) {
    allowed = allowed.logical_and(key_valid.view({batch, 1, 1, total}));
    allowed = allowed.logical_or((kv_idx == q_idx).view({1, 1, tokens, total}));
  } else {
    allowed = allowed.expand({batch, 1, tokens, total});
  }
  return allowed;
}

}  // namespace

AttentionContext BuildAttentionContext(const ModelConfig& config, int64_t batch, int64_t tokens,
                                       const torch::Tensor& attention_mask,
                                       const torch::Tensor& position_ids, KvCache* cache,
                                       torch::Device device) {
  AttentionContext context;
  context.cache = cache;
  const int64_t past = cache != nullptr ? cache->length() : 0;
  const int64_t total = past + tokens;
  torch::Tensor key_valid;
  if (attention_mask.defined()) {
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == batch &&
                    attention_mask.size(1) == total,
                "attention_mask must have shape [", batch, ", ", total, "], got ",
                attention_mask.sizes());
    key_valid = attention_mask.to(device, torch::kBool);
  }

  if (position_ids.defined()) {
    TORCH_CHECK(
        position_ids.dim() == 2 && position_ids.size(0) == batch && position_ids.size(1) == tokens,
        "position_ids must have shape [", batch, ", ", tokens, "], got ", position_ids.sizes());
    context.position_ids = position_ids.to(device, torch::kInt64);
  } else if (key_valid.defined()) {
    // generation/utils.py: position_ids = attention_mask.long().cumsum(-1) - 1;
    // position_ids.masked_fill_(attention_mask == 0, 1)
    torch::Tensor positions = key_valid.to(torch::kInt64).cumsum(-1) - 1;
    positions.masked_fill_(key_valid.logical_not(), 1);
    context.position_ids = positions.slice(1, past, total);
  } else {
    context.position_ids =
        torch::arange(past, total, torch::TensorOptions().dtype(torch::kInt64).device(device))
            .unsqueeze(0)
            .expand({batch, tokens});
  }

  // Without padding, a fresh causal block or a single new token needs no explicit mask.
  const bool simple = !key_valid.defined() && (past == 0 || tokens == 1);
  if (simple) {
    context.full_is_causal = tokens > 1;
  } else {
    context.full_mask = BuildMask(key_valid, batch, past, tokens, 0, device);
  }
  const auto window_it = std::find_if(config.sliding_windows.begin(), config.sliding_windows.end(),
                                      [](int64_t w) { return w > 0; });
  if (window_it != config.sliding_windows.end()) {
    context.sliding_window = *window_it;
    if (total <= context.sliding_window) {
      // Every key is inside the window: the sliding mask is the full one.
      context.sliding_mask = context.full_mask;
      context.sliding_is_causal = context.full_is_causal;
    } else {
      context.sliding_mask = BuildMask(key_valid, batch, past, tokens, *window_it, device);
    }
  }
  return context;
}

torch::Tensor Attend(const torch::Tensor& query, const torch::Tensor& key,
                     const torch::Tensor& value, const AttentionContext& context,
                     int64_t sliding_window, double scale) {
  const bool sliding = sliding_window > 0;
  const torch::Tensor& mask = sliding ? context.sliding_mask : context.full_mask;
  const bool is_causal = sliding ? context.sliding_is_causal : context.full_is_causal;
  const bool gqa = query.size(1) != key.size(1);
  torch::Tensor out = at::scaled_dot_product_attention(
      query, key, value, mask.defined() ? std::optional<torch::Tensor>(mask) : std::nullopt,
      /*dropout_p=*/0.0, is_causal, scale, /*enable_gqa=*/gqa);
  // [B, H, T, D] -> [B, T, H * D]
  return out.transpose(1, 2).reshape({query.size(0), query.size(2), -1});
}

}  // namespace rlhf::model
