#include "common/model/kv_cache.h"

#include "absl/strings/str_cat.h"
#include "common/status/torch_status.h"

namespace rlhf::model {

absl::StatusOr<KvCache> KvCache::Create(const ModelConfig& config, int64_t batch,
                                        int64_t max_length, torch::ScalarType dtype,
                                        torch::Device device) {
  if (batch <= 0 || max_length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache needs a positive batch and length, got ", batch, " x ", max_length));
  }
  return CatchTorchErrors("allocating the KV cache", [&]() -> absl::StatusOr<KvCache> {
    KvCache cache;
    cache.batch_ = batch;
    cache.max_length_ = max_length;
    auto options = torch::TensorOptions().dtype(dtype).device(device);
    for (int64_t i = 0; i < config.num_layers; ++i) {
      // Zeros, not empty: padded slots are masked out, but must never hold NaN bit
      // patterns that a masked (zero-weight) product could still propagate.
      cache.keys_.push_back(
          torch::zeros({batch, config.num_kv_heads, max_length, config.head_dim}, options));
      cache.values_.push_back(
          torch::zeros({batch, config.num_kv_heads, max_length, config.head_dim}, options));
    }
    return cache;
  });
}

std::pair<torch::Tensor, torch::Tensor> KvCache::Append(int64_t layer, const torch::Tensor& key,
                                                        const torch::Tensor& value) {
  const int64_t tokens = key.size(2);
  TORCH_CHECK(length_ + tokens <= max_length_, "KV cache overflow: ", length_, " + ", tokens, " > ",
              max_length_);
  const int64_t end = length_ + tokens;
  keys_[layer].slice(2, length_, end).copy_(key);
  values_[layer].slice(2, length_, end).copy_(value);
  return {keys_[layer].slice(2, 0, end), values_[layer].slice(2, 0, end)};
}

void KvCache::Advance(int64_t tokens) { length_ += tokens; }

void KvCache::CopyRowsFrom(const KvCache& source, const torch::Tensor& rows) {
  TORCH_CHECK(length_ == 0, "KvCache::CopyRowsFrom: the cache already holds ", length_,
              " positions");
  TORCH_CHECK(source.keys_.size() == keys_.size() && rows.dim() == 1 && rows.size(0) == batch_ &&
                  source.length_ <= max_length_,
              "KvCache::CopyRowsFrom: source of ", source.keys_.size(), " layers x ",
              source.length_, " positions does not fit ", keys_.size(), " layers x ", max_length_,
              " for ", rows.numel(), " of ", batch_, " rows");
  const int64_t length = source.length_;
  for (size_t layer = 0; layer < keys_.size(); ++layer) {
    keys_[layer]
        .slice(2, 0, length)
        .copy_(source.keys_[layer].slice(2, 0, length).index_select(0, rows));
    values_[layer]
        .slice(2, 0, length)
        .copy_(source.values_[layer].slice(2, 0, length).index_select(0, rows));
  }
  length_ = length;
}

}  // namespace rlhf::model
