#pragma once

// Saving in the Hugging Face layout that transformers' save_pretrained writes and
// from_pretrained reads: config.json, model.safetensors (or shards + index),
// generation_config.json, and the tokenizer's files.

#include <cstddef>
#include <filesystem>
#include <optional>

#include <torch/torch.h>

#include "absl/status/status.h"
#include "common/model/causal_lm.h"
#include "common/model/sequence_classifier.h"

namespace rlhf::model {

struct SaveOptions {
  // Copy tokenizer.json, tokenizer_config.json, special_tokens_map.json (and the legacy
  // vocab.json, merges.txt, tokenizer.model, added_tokens.json when present) from here.
  std::optional<std::filesystem::path> tokenizer_dir;
  // transformers' save_pretrained default max_shard_size="5GB" (10^9 bytes per GB).
  size_t max_shard_bytes = 5'000'000'000;
  // Save weights in this dtype (float32, bfloat16, float16); default: the model's.
  std::optional<torch::ScalarType> dtype;
  // false: leave out TRL's value head (v_head.*), e.g. to export a trained policy.
  bool include_value_head = true;
};

// Writes `dir` atomically: everything goes to a fresh sibling directory which then replaces
// `dir` in one rename (an existing `dir` is swapped out and removed), so a reader sees the
// old checkpoint or the complete new one. Files in an existing `dir` that are not part of a
// Hugging Face checkpoint (e.g. a trainer's state) are carried over, hard-linked. config.json is
// the loaded file with the fields this save decides updated (architectures, dtype, id2label for
// classifiers). Tied weights are stored once, under the embedding's name, as transformers does. A
// value head is saved as v_head.summary.*, TRL's layout. Reads the model only; do not run an
// optimizer step on it concurrently.
absl::Status SavePretrained(const CausalLm& model, const std::filesystem::path& dir,
                            const SaveOptions& options = {});
absl::Status SavePretrained(const SequenceClassifier& model, const std::filesystem::path& dir,
                            const SaveOptions& options = {});

}  // namespace rlhf::model
