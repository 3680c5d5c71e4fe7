#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/io/safetensors_file.h"

namespace rlhf::io {

// Writers for files the Python `safetensors` library and transformers load. Tensors are
// laid out contiguously in the order given (the reference sorts by dtype and name; order is
// not part of the format). The JSON header is padded with spaces to a multiple of 8 bytes,
// as the reference does, so data starts 8-byte aligned. `metadata` becomes "__metadata__"
// (omitted when empty).
//
// Input is checked first (InvalidArgument): names unique, valid UTF-8 and not
// "__metadata__"; nbytes == dtype size x product(shape); non-negative dims; data non-null
// unless nbytes is 0.

// The whole file in memory (for tests, the fuzzer, or sending over the wire).
absl::StatusOr<std::string> SerializeSafetensors(
    std::span<const TensorView> tensors, const std::map<std::string, std::string>& metadata);

// Writes `path` atomically: to "<path>.tmp", fsync, rename.
absl::Status WriteSafetensors(const std::filesystem::path& path,
                              std::span<const TensorView> tensors,
                              const std::map<std::string, std::string>& metadata);

// Writes a checkpoint directory the way transformers' save_pretrained does: one
// "model.safetensors" if the tensor data fits in `max_shard_bytes`, else shards
// "model-00001-of-0000N.safetensors" (tensors packed greedily in order; a tensor larger
// than the limit gets a shard of its own) plus "model.safetensors.index.json" with
// {"metadata": {...metadata, "total_size": <data bytes>}, "weight_map": {name: file}}.
// Each shard also carries `metadata`. Creates `dir` if needed and then removes files of
// the other layout (or shards of an earlier, larger save) so that the directory holds
// one checkpoint. Each file is atomic, the directory as a whole is not: to replace a
// checkpoint atomically, write a fresh directory and rename it.
absl::Status WriteShardedSafetensors(const std::filesystem::path& dir,
                                     std::span<const TensorView> tensors,
                                     const std::map<std::string, std::string>& metadata,
                                     size_t max_shard_bytes);

}  // namespace rlhf::io
