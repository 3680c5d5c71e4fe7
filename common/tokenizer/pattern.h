#pragma once

// Patterns and NormalizedString::split from tokenizers (tokenizers/src/tokenizer/pattern.rs,
// normalizer.rs). Regexes run on PCRE2 with UTF|UCP so that \p{L}, \p{N}, \s and
// lookahead behave like the Oniguruma engine the tokenizers crate uses.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

struct pcre2_real_code_8;

namespace rlhf::tokenizer {

struct Span {
  size_t start = 0;
  size_t end = 0;
};

// A literal string or a compiled regex. Immutable after construction and safe to share
// between threads (each FindAll allocates its own match data).
class Pattern {
 public:
  static Pattern Literal(std::string text);
  // `path` names the JSON field in compile errors.
  static absl::StatusOr<Pattern> Regex(std::string_view regex, std::string_view path);

  // All non-overlapping leftmost matches, in order. Input that is not valid UTF-8 is
  // allowed: ill-formed bytes never match (PCRE2_MATCH_INVALID_UTF).
  absl::StatusOr<std::vector<Span>> FindAll(std::string_view text) const;

  const std::string& source() const { return source_; }

 private:
  std::string source_;
  std::shared_ptr<pcre2_real_code_8> code_;  // null for a literal
};

// tokenizers' SplitDelimiterBehavior.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
absl::StatusOr<SplitBehavior> ParseSplitBehavior(std::string_view name, std::string_view path);

// NormalizedString::split: the non-empty pieces of `text` after splitting on `pattern`
// with `behavior` (matches flipped when `invert`).
absl::StatusOr<std::vector<Span>> SplitByPattern(std::string_view text, const Pattern& pattern,
                                                 SplitBehavior behavior, bool invert);

// Replaces every match of `pattern` in `text` by `content`.
absl::StatusOr<std::string> ReplaceAll(std::string_view text, const Pattern& pattern,
                                       std::string_view content);

}  // namespace rlhf::tokenizer
