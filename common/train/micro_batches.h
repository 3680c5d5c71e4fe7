#pragma once

// Micro-batching by token budget: a minibatch (one optimizer step) is cut into
// micro-batches of at most `max_tokens` padded tokens per forward/backward pass, and
// each micro-batch's loss is scaled by its share of the minibatch so that the
// accumulated gradients are the minibatch's (gradient accumulation). The losses are
// means over rows or over response tokens, so a share is a ratio of rows or of tokens.
// Pure functions: thread-safe.

#include <cstdint>
#include <vector>

#include "common/train/padded_batch.h"

namespace rlhf::train {

// Per row of a training step (a pair counts as one row of two sequences).
struct RowShapes {
  std::vector<int64_t> lengths;          // longest sequence (prompt + response) of the row
  std::vector<int64_t> response_tokens;  // response tokens of the row's first sequence
  int64_t sequences_per_row = 1;         // 2 for chosen/rejected or batch/KL pairs

  int64_t rows() const { return static_cast<int64_t>(lengths.size()); }
};

// Rows [0, rows) of `padded`; with sequences_per_row 2 row r pairs sequence r with
// sequence r + rows (the Stack layout of the preference and KTO steps).
RowShapes ShapesOf(const PaddedBatch& padded, int64_t rows, int64_t sequences_per_row = 1);

struct MicroBatch {
  std::vector<int64_t> rows;            // indices into the step's rows
  std::vector<int64_t> minibatch_rows;  // the minibatch this micro-batch belongs to
  // Columns of the minibatch's logprob grid (its longest sequence - 1): a constant
  // normaliser (Dr. GRPO) divides by it, whatever the micro-batch's own width.
  int64_t minibatch_width = 1;
  double row_share = 1.0;    // rows / minibatch rows
  double token_share = 1.0;  // response tokens / minibatch response tokens (row share if 0)

  bool whole() const { return rows.size() == minibatch_rows.size(); }
};

// `minibatch` cut, in order, into micro-batches whose padded size (rows x sequences per
// row x longest sequence) is at most max_tokens; a row longer than that alone is one
// micro-batch. max_tokens <= 0: the whole minibatch.
std::vector<MicroBatch> SplitMicroBatches(const std::vector<int64_t>& minibatch,
                                          const RowShapes& shapes, int64_t max_tokens);

}  // namespace rlhf::train
