#pragma once
// Bounds a request is checked against before anything proportional to it is allocated
// (DESIGN.md: "every request is bounded before allocation"): a batch padded to its longest
// sequence must fit in kMaxPaddedTokens token slots (512 MiB of int64 ids), else the
// caller gets RESOURCE_EXHAUSTED and is told to send smaller batches.

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rlhf::model {

inline constexpr int64_t kMaxPaddedTokens = int64_t{1} << 26;

// Padded tokens per inference forward (reference log-probs, the actor's Evaluate): a
// larger batch runs as row chunks of about this many tokens, so activations stay bounded
// whatever the request's size, and a caller who gives up is noticed between chunks.
inline constexpr int64_t kForwardChunkTokens = 32768;

// Rows per chunk for a batch padded to `width` tokens (at least one).
inline int64_t ForwardChunkRows(int64_t width) {
  return width > 0 && width < kForwardChunkTokens ? kForwardChunkTokens / width : 1;
}

// OK when rows x width padded token slots fit; `rows` and `width` are non-negative.
inline absl::Status CheckPaddedSize(int64_t rows, int64_t width) {
  if (width > 0 && rows > kMaxPaddedTokens / width) {
    return absl::ResourceExhaustedError(absl::StrCat("a batch of ", rows, " sequences padded to ",
                                                     width, " tokens exceeds ", kMaxPaddedTokens,
                                                     " token slots; send smaller batches"));
  }
  return absl::OkStatus();
}

}  // namespace rlhf::model
