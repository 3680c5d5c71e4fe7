#pragma once
// The job's dataset, tokenized once, read in a seeded order epoch after epoch.

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "common/jobs/tokenized_data.h"

namespace rlhf::coordinator {

// The dataset tokenized once, read in a seeded order, epoch after epoch. The cursor (how
// many examples were handed out) is all a checkpoint needs to continue the sequence.
class DataStream {
 public:
  DataStream(std::vector<jobs::TokenizedExample> examples, uint64_t seed)
      : examples_(std::move(examples)), seed_(seed) {}

  std::vector<const jobs::TokenizedExample*> Next(int64_t count) {
    std::vector<const jobs::TokenizedExample*> out;
    for (int64_t i = 0; i < count; ++i, ++cursor_) {
      const int64_t n = static_cast<int64_t>(examples_.size());
      const int64_t epoch = cursor_ / n;
      if (epoch != order_epoch_) Shuffle(epoch);
      out.push_back(&examples_[order_[cursor_ % n]]);
    }
    return out;
  }
  int64_t cursor() const { return cursor_; }
  void set_cursor(int64_t cursor) { cursor_ = cursor; }
  int64_t size() const { return static_cast<int64_t>(examples_.size()); }

 private:
  void Shuffle(int64_t epoch) {
    order_.resize(examples_.size());
    std::iota(order_.begin(), order_.end(), 0);
    std::mt19937_64 rng(seed_ + static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ULL);
    std::shuffle(order_.begin(), order_.end(), rng);
    order_epoch_ = epoch;
  }

  std::vector<jobs::TokenizedExample> examples_;
  uint64_t seed_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
  int64_t cursor_ = 0;
};

}  // namespace rlhf::coordinator
