#include "common/tokenizer/pattern.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>

#include "absl/status/status.h"
#include "common/tokenizer/cat.h"
#include "common/tokenizer/utf8.h"

namespace rlhf::tokenizer {
namespace {

std::string Pcre2Message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof(buffer)) < 0) {
    return Cat("PCRE2 error ", code);
  }
  return reinterpret_cast<const char*>(buffer);
}

// Unicode White_Space, which Oniguruma's \s matches. PCRE2's \s also takes U+180E
// (Mongolian vowel separator, a format character since Unicode 6.3), so the patterns
// are rewritten to this explicit set.
constexpr std::string_view kWhiteSpaceRanges =
    R"(\x{09}-\x{0D}\x{20}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F})"
    R"(\x{205F}\x{3000})";

// Replaces \s (and \S outside character classes) by explicit White_Space classes.
std::string RewriteWhitespaceClasses(std::string_view regex) {
  std::string out;
  out.reserve(regex.size());
  bool in_class = false;
  for (size_t i = 0; i < regex.size(); ++i) {
    const char c = regex[i];
    if (c == '\\' && i + 1 < regex.size()) {
      const char next = regex[++i];
      if (next == 's') {
        out += in_class ? std::string(kWhiteSpaceRanges) : Cat("[", kWhiteSpaceRanges, "]");
      } else if (next == 'S' && !in_class) {
        out += Cat("[^", kWhiteSpaceRanges, "]");
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    out += c;
    if (!in_class && c == '[') {
      in_class = true;
      // A ']' right after '[' or '[^' is a literal member, not the end of the class.
      if (i + 1 < regex.size() && regex[i + 1] == '^') out += regex[++i];
      if (i + 1 < regex.size() && regex[i + 1] == ']') out += regex[++i];
    } else if (in_class && c == ']') {
      in_class = false;
    }
  }
  return out;
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

}  // namespace

Pattern Pattern::Literal(std::string text) {
  Pattern pattern;
  pattern.source_ = std::move(text);
  return pattern;
}

absl::StatusOr<Pattern> Pattern::Regex(std::string_view regex, std::string_view path) {
  // Oniguruma's default syntax lets ^ and $ match at line breaks, hence MULTILINE.
  constexpr uint32_t kOptions = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_MULTILINE;
  int error_code = 0;
  PCRE2_SIZE error_offset = 0;
  const std::string rewritten = RewriteWhitespaceClasses(regex);
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                                   kOptions, &error_code, &error_offset, nullptr);
  if (code == nullptr) {
    return absl::InvalidArgumentError(
        Cat(path, ": invalid regex /", regex, "/: ", Pcre2Message(error_code)));
  }
  // JIT is an optimisation only; matching falls back to the interpreter without it.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  Pattern pattern;
  pattern.source_ = std::string(regex);
  pattern.code_ = std::shared_ptr<pcre2_code>(code, pcre2_code_free);
  return pattern;
}

absl::StatusOr<std::vector<Span>> Pattern::FindAll(std::string_view text) const {
  std::vector<Span> matches;
  if (code_ == nullptr) {
    if (source_.empty()) return matches;  // tokenizers: an empty literal matches nothing
    for (size_t pos = text.find(source_); pos != std::string_view::npos;
         pos = text.find(source_, pos + source_.size())) {
      matches.push_back({pos, pos + source_.size()});
    }
    return matches;
  }
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create_from_pattern(code_.get(), nullptr));
  if (data == nullptr) return absl::ResourceExhaustedError("out of memory matching a regex");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  size_t last_end = std::string_view::npos;
  uint32_t no_jit = 0;
  while (pos <= text.size()) {
    int rc = pcre2_match(code_.get(), subject, text.size(), pos, no_jit, data.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && no_jit == 0) {
      no_jit = PCRE2_NO_JIT;  // the interpreter keeps its backtracking state on the heap
      continue;
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return absl::ResourceExhaustedError(
          Cat("regex /", source_, "/ failed at byte ", pos, ": ", Pcre2Message(rc)));
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const size_t start = ovector[0], end = ovector[1];
    if (start == end) {
      // Empty match: keep it unless it touches the previous match (Rust regex iterator
      // rule), then step over one character so the loop always advances.
      if (start != last_end) matches.push_back({start, end});
      if (start >= text.size()) break;
      pos = start + DecodeUtf8(text, start).length;
      continue;
    }
    matches.push_back({start, end});
    last_end = end;
    pos = end;
  }
  return matches;
}

absl::StatusOr<SplitBehavior> ParseSplitBehavior(std::string_view name, std::string_view path) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  return absl::InvalidArgumentError(Cat(path, ": unknown split behavior \"", name, "\""));
}

absl::StatusOr<std::vector<Span>> SplitByPattern(std::string_view text, const Pattern& pattern,
                                                 SplitBehavior behavior, bool invert) {
  // Pattern::find_matches: (span, is_match) pairs covering the whole text.
  struct Piece {
    Span span;
    bool is_match;
  };
  std::vector<Piece> pieces;
  if (text.empty()) {
    pieces.push_back({{0, 0}, false});
  } else {
    absl::StatusOr<std::vector<Span>> matches = pattern.FindAll(text);
    if (!matches.ok()) return matches.status();
    size_t prev = 0;
    for (const Span& m : *matches) {
      if (prev != m.start) pieces.push_back({{prev, m.start}, false});
      pieces.push_back({m, true});
      prev = m.end;
    }
    if (prev != text.size()) pieces.push_back({{prev, text.size()}, false});
  }
  if (invert) {
    for (Piece& p : pieces) p.is_match = !p.is_match;
  }

  // NormalizedString::split: merge or drop the delimiters as `behavior` says.
  std::vector<Piece> splits;  // is_match now means "remove"
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (Piece p : pieces) splits.push_back({p.span, false});
      break;
    case SplitBehavior::kRemoved:
      splits = pieces;
      break;
    case SplitBehavior::kContiguous:
      for (const Piece& p : pieces) {
        if (p.is_match == previous_match && !splits.empty()) {
          splits.back().span.end = p.span.end;
        } else {
          splits.push_back({p.span, false});
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Piece& p : pieces) {
        if (p.is_match && !previous_match && !splits.empty()) {
          splits.back().span.end = p.span.end;
        } else {
          splits.push_back({p.span, false});
        }
        previous_match = p.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) {
        if (it->is_match && !previous_match && !splits.empty()) {
          splits.back().span.start = it->span.start;
        } else {
          splits.push_back({it->span, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(splits.begin(), splits.end());
      break;
  }
  std::vector<Span> out;
  out.reserve(splits.size());
  for (const Piece& p : splits) {
    // PreTokenizedString::split drops empty pieces.
    if (!p.is_match && p.span.end > p.span.start) out.push_back(p.span);
  }
  return out;
}

absl::StatusOr<std::string> ReplaceAll(std::string_view text, const Pattern& pattern,
                                       std::string_view content) {
  absl::StatusOr<std::vector<Span>> matches = pattern.FindAll(text);
  if (!matches.ok()) return matches.status();
  std::string out;
  out.reserve(text.size());
  size_t prev = 0;
  for (const Span& m : *matches) {
    out.append(text.substr(prev, m.start - prev));
    out.append(content);
    prev = m.end;
  }
  out.append(text.substr(prev));
  return out;
}

}  // namespace rlhf::tokenizer
