#include "common/train/micro_batches.h"

#include <algorithm>

namespace rlhf::train {

RowShapes ShapesOf(const PaddedBatch& padded, int64_t rows, int64_t sequences_per_row) {
  RowShapes shapes;
  shapes.sequences_per_row = sequences_per_row;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t longest = 0;
    for (int64_t k = 0; k < sequences_per_row; ++k) {
      const int64_t s = r + k * rows;
      longest = std::max(longest, padded.prompt_lengths[s] + padded.response_lengths[s]);
    }
    shapes.lengths.push_back(longest);
    shapes.response_tokens.push_back(padded.response_lengths[r]);
  }
  return shapes;
}

std::vector<MicroBatch> SplitMicroBatches(const std::vector<int64_t>& minibatch,
                                          const RowShapes& shapes, int64_t max_tokens) {
  int64_t longest = 2;  // SelectRows pads to at least 2 columns
  int64_t tokens = 0;
  for (int64_t r : minibatch) {
    longest = std::max(longest, shapes.lengths[r]);
    tokens += shapes.response_tokens[r];
  }
  std::vector<std::vector<int64_t>> parts;
  if (max_tokens <= 0) {
    parts.push_back(minibatch);
  } else {
    std::vector<int64_t> current;
    int64_t current_longest = 0;
    for (int64_t r : minibatch) {
      const int64_t with_row = std::max(current_longest, shapes.lengths[r]);
      const int64_t padded =
          static_cast<int64_t>(current.size() + 1) * shapes.sequences_per_row * with_row;
      if (!current.empty() && padded > max_tokens) {
        parts.push_back(std::move(current));
        current.clear();
        current_longest = shapes.lengths[r];
      } else {
        current_longest = with_row;
      }
      current.push_back(r);
    }
    if (!current.empty()) parts.push_back(std::move(current));
  }
  std::vector<MicroBatch> out;
  for (auto& rows : parts) {
    MicroBatch micro;
    int64_t micro_tokens = 0;
    for (int64_t r : rows) micro_tokens += shapes.response_tokens[r];
    micro.row_share = static_cast<double>(rows.size()) / static_cast<double>(minibatch.size());
    micro.token_share = tokens > 0 ? static_cast<double>(micro_tokens) / static_cast<double>(tokens)
                                   : micro.row_share;
    micro.rows = std::move(rows);
    micro.minibatch_rows = minibatch;
    micro.minibatch_width = longest - 1;
    out.push_back(std::move(micro));
  }
  return out;
}

}  // namespace rlhf::train
