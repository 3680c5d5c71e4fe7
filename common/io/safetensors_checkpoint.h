#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/io/safetensors_file.h"

namespace rlhf::io {

// The two layouts transformers' save_pretrained writes.
inline constexpr std::string_view kSafetensorsFileName = "model.safetensors";
inline constexpr std::string_view kSafetensorsIndexFileName = "model.safetensors.index.json";

// A Hugging Face model directory's weights: either one "model.safetensors" or shards
// listed by "model.safetensors.index.json" ({"metadata": {...}, "weight_map": {name: file}}).
// If both exist, model.safetensors wins, as in transformers. Opening validates every shard
// and checks that each holds exactly the tensors the index assigns it. Errors name the
// directory or file and the tensor.
//
// Immutable after construction, so safe to read from many threads.
class SafetensorsCheckpoint {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> Open(
      const std::filesystem::path& dir);

  SafetensorsCheckpoint(const SafetensorsCheckpoint&) = delete;
  SafetensorsCheckpoint& operator=(const SafetensorsCheckpoint&) = delete;

  // The tensor named `name` in whichever file holds it, or nullptr.
  const TensorView* Find(std::string_view name) const;

  // All tensors: shards in file-name order, each in its file order (which is the order
  // WriteShardedSafetensors was given).
  const std::vector<const TensorView*>& tensors() const { return tensors_; }
  std::vector<std::string> names() const;

  // model.safetensors' "__metadata__", or the index's "metadata" for a sharded checkpoint
  // (non-string values such as "total_size" as their JSON text, e.g. "1234").
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The open files: one, or one per shard in file-name order.
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

  bool sharded() const { return sharded_; }

 private:
  SafetensorsCheckpoint() = default;
  absl::Status OpenSharded(const std::filesystem::path& dir);
  void IndexTensors();

  bool sharded_ = false;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<const TensorView*> tensors_;
  absl::flat_hash_map<std::string_view, const TensorView*> by_name_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace rlhf::io
