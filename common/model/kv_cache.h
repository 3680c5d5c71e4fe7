#pragma once

// KvCache: per-layer key/value buffers preallocated once for a whole generation, so a
// decode step writes one slice in place instead of concatenating (transformers'
// DynamicCache re-allocates with torch.cat on every step; StaticCache is the model here).
// Not thread-safe: one cache belongs to one generation loop.

#include <cstdint>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/model/config.h"

namespace rlhf::model {

class KvCache {
 public:
  // Buffers of shape [batch, num_kv_heads, max_length, head_dim] per layer.
  static absl::StatusOr<KvCache> Create(const ModelConfig& config, int64_t batch,
                                        int64_t max_length, torch::ScalarType dtype,
                                        torch::Device device);

  int64_t batch() const { return batch_; }
  int64_t max_length() const { return max_length_; }
  // Positions already written (the same for every layer between forward calls).
  int64_t length() const { return length_; }
  int64_t num_layers() const { return static_cast<int64_t>(keys_.size()); }

  // Writes key/value [batch, kv_heads, T, head_dim] of `layer` at [length, length + T) and
  // returns views of everything written so far, [batch, kv_heads, length + T, head_dim].
  // Throws c10::Error when the cache would overflow (callers check capacity up front).
  std::pair<torch::Tensor, torch::Tensor> Append(int64_t layer, const torch::Tensor& key,
                                                 const torch::Tensor& value);

  // Marks T more positions as written; called once per forward after every layer appended.
  void Advance(int64_t tokens);

  // Fills this empty cache's first source.length() positions with source's rows `rows`
  // ([batch] int64 on the cache's device: row b takes source row rows[b]): prompts shared
  // by several rows are prefilled once and copied. Throws c10::Error on a mismatch.
  void CopyRowsFrom(const KvCache& source, const torch::Tensor& rows);

  // Forgets the contents (buffers are kept for reuse).
  void Reset() { length_ = 0; }

 private:
  KvCache() = default;

  int64_t batch_ = 0;
  int64_t max_length_ = 0;
  int64_t length_ = 0;
  std::vector<torch::Tensor> keys_;
  std::vector<torch::Tensor> values_;
};

}  // namespace rlhf::model
