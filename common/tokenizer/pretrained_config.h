#pragma once

// The parts of a Hugging Face checkpoint directory beside tokenizer.json that change how
// transformers' AutoTokenizer encodes or which ids mean BOS/EOS/PAD:
// tokenizer_config.json and generation_config.json (both optional).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace rlhf::tokenizer {

struct PretrainedConfig {
  bool has_tokenizer_config = false;
  // tokenizer_config.json; special tokens may be strings or {"content": ...} objects.
  std::optional<std::string> tokenizer_class;
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> pad_token;
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  std::optional<bool> add_prefix_space;
  // Special added tokens are then matched as ordinary text (see AddedVocabulary).
  std::optional<bool> split_special_tokens;
  // generation_config.json; eos_token_id may be an int or a list.
  std::optional<int64_t> generation_bos_id;
  std::vector<int64_t> generation_eos_ids;
  std::optional<int64_t> generation_pad_id;
};

// Reads `dir`/tokenizer_config.json and `dir`/generation_config.json where present;
// malformed files or fields of the wrong kind are errors naming the file and field.
absl::StatusOr<PretrainedConfig> LoadPretrainedConfig(const std::filesystem::path& dir);

}  // namespace rlhf::tokenizer
