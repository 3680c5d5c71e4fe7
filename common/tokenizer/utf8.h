#pragma once

// UTF-8 helpers with the exact semantics of Rust's `str` / `String::from_utf8_lossy`,
// which the Hugging Face tokenizers crate relies on.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace rlhf::tokenizer {

// One step of UTF-8 decoding at `pos`: either a valid scalar value or the length of the
// maximal ill-formed prefix (at least 1 byte), as Rust's Utf8Chunks defines it.
struct Utf8Step {
  char32_t codepoint = 0;
  size_t length = 0;
  bool valid = false;
};
Utf8Step DecodeUtf8(std::string_view text, size_t pos);

// The character that ends exactly at `end`; valid=false when there is none (start of text
// or ill-formed bytes). `length` is its byte length.
Utf8Step DecodeUtf8Before(std::string_view text, size_t end);

// The byte offset of the first invalid sequence, or nullopt when `text` is valid UTF-8
// (no overlongs, no surrogates, nothing above U+10FFFF).
std::optional<size_t> FindInvalidUtf8(std::string_view text);

void AppendUtf8(std::string& out, char32_t codepoint);

// Rust String::from_utf8_lossy: each maximal ill-formed subsequence becomes one U+FFFD.
std::string Utf8Lossy(std::string_view bytes);

// Rust char::is_whitespace (Unicode White_Space).
bool IsWhitespace(char32_t c);

// Rust regex `\w` (Unicode word character): letters, marks, decimal digits, connector
// punctuation, join controls; used for added tokens' single_word.
bool IsWordChar(char32_t c);

// Calls fn(run) for each maximal valid UTF-8 run and appends invalid bytes unchanged;
// lets normalizers run on byte-level input that is not valid UTF-8.
template <typename Fn>
std::string MapValidRuns(std::string_view text, Fn&& fn) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    size_t run_end = pos;
    while (run_end < text.size()) {
      Utf8Step step = DecodeUtf8(text, run_end);
      if (!step.valid) break;
      run_end += step.length;
    }
    if (run_end > pos) out += fn(text.substr(pos, run_end - pos));
    if (run_end < text.size()) {
      Utf8Step bad = DecodeUtf8(text, run_end);
      out.append(text.substr(run_end, bad.length));
      run_end += bad.length;
    }
    pos = run_end;
  }
  return out;
}

}  // namespace rlhf::tokenizer
