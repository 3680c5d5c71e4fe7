#pragma once

// GPT-2's reversible byte <-> printable-character map (tokenizers
// pre_tokenizers/byte_level.rs `bytes_char`, from openai/gpt-2 encoder.py).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rlhf::tokenizer {

// The built-in GPT-2 split regex of the ByteLevel pre-tokenizer when use_regex is true.
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Maps every byte of `bytes` (valid UTF-8 or not) to its printable character.
std::string BytesToByteLevel(std::string_view bytes);

// The byte a byte-level character stands for, or nullopt for any other character.
std::optional<uint8_t> ByteLevelCharToByte(char32_t c);

}  // namespace rlhf::tokenizer
