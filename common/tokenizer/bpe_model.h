#pragma once

// The BPE model of tokenizers/src/models/bpe/ (model.rs, word.rs): merges applied by rank
// with a priority queue (O(n log n) per word), byte fallback, unk fusing, ignore_merges,
// and a bounded cache of recently seen words.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tokenizer/json_config.h"

namespace rlhf::tokenizer {

// Thread-safe: Tokenize may run concurrently; the word cache is guarded by a mutex.
class BpeModel {
 public:
  // Parses the "model" object at `path` (type "BPE").
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const Json& json,
                                                            std::string_view path);

  // Appends the ids of one pre-tokenized word.
  absl::Status Tokenize(std::string_view word, std::vector<int64_t>& ids) const;

  std::optional<int64_t> TokenToId(std::string_view token) const;
  const std::string* IdToToken(int64_t id) const;
  // Largest id in the vocabulary, -1 when it is empty.
  int64_t max_id() const { return max_id_; }

 private:
  struct MergeValue {
    int32_t rank;
    int64_t new_id;
  };
  using PairKey = std::pair<int64_t, int64_t>;

  BpeModel() = default;
  absl::Status BuildWord(std::string_view word, std::vector<int64_t>& symbols) const;
  void MergeAll(std::vector<int64_t>& symbols) const;

  // tokenizers' DEFAULT_CACHE_CAPACITY, and words longer than this are not cached.
  static constexpr size_t kCacheCapacity = 10000;
  static constexpr size_t kMaxCachedWordBytes = 256;

  absl::flat_hash_map<std::string, int64_t> vocab_;
  absl::flat_hash_map<int64_t, std::string> vocab_r_;
  absl::flat_hash_map<PairKey, MergeValue> merges_;
  std::optional<std::string> unk_token_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::vector<std::optional<int64_t>> byte_ids_;  // "<0xXX>" tokens, for byte fallback
  int64_t max_id_ = -1;

  mutable std::mutex cache_mutex_;
  mutable absl::flat_hash_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace rlhf::tokenizer
