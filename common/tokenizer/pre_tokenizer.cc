#include "common/tokenizer/pre_tokenizer.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/cat.h"
#include "common/tokenizer/pattern.h"

namespace rlhf::tokenizer {
namespace {

// PreTokenizedString::split: replaces each piece without a token by the non-empty pieces
// `fn` makes of it; only the first of them can still start the original input.
template <typename Fn>
absl::Status SplitEach(std::vector<Piece>& pieces, Fn&& fn) {
  std::vector<Piece> out;
  out.reserve(pieces.size());
  for (Piece& piece : pieces) {
    if (piece.token_id.has_value()) {
      out.push_back(std::move(piece));
      continue;
    }
    absl::StatusOr<std::vector<std::string>> parts = fn(piece);
    if (!parts.ok()) return parts.status();
    bool first = piece.at_original_start;
    for (std::string& part : *parts) {
      if (part.empty()) continue;
      out.push_back(Piece{std::move(part), first, std::nullopt});
      first = false;
    }
  }
  pieces = std::move(out);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SplitText(std::string_view text, const Pattern& pattern,
                                                   SplitBehavior behavior, bool invert) {
  absl::StatusOr<std::vector<Span>> spans = SplitByPattern(text, pattern, behavior, invert);
  if (!spans.ok()) return spans.status();
  std::vector<std::string> parts;
  parts.reserve(spans->size());
  for (const Span& s : *spans) parts.emplace_back(text.substr(s.start, s.end - s.start));
  return parts;
}

// pre_tokenizers/split.rs.
class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  absl::Status PreTokenize(std::vector<Piece>& pieces) const override {
    return SplitEach(pieces, [&](const Piece& piece) {
      return SplitText(piece.text, pattern_, behavior_, invert_);
    });
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

// pre_tokenizers/byte_level.rs: optional prefix space, optional GPT-2 regex split, then
// every byte mapped to its printable character.
class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, Pattern gpt2, bool use_regex)
      : add_prefix_space_(add_prefix_space), gpt2_(std::move(gpt2)), use_regex_(use_regex) {}
  absl::Status PreTokenize(std::vector<Piece>& pieces) const override {
    return SplitEach(pieces, [&](const Piece& piece) -> absl::StatusOr<std::vector<std::string>> {
      std::string text = piece.text;
      if (add_prefix_space_ && !absl::StartsWith(text, " ")) text = Cat(" ", text);
      std::vector<std::string> parts;
      if (use_regex_) {
        absl::StatusOr<std::vector<std::string>> split =
            SplitText(text, gpt2_, SplitBehavior::kIsolated, false);
        if (!split.ok()) return split.status();
        parts = *std::move(split);
      } else {
        parts.push_back(std::move(text));
      }
      for (std::string& part : parts) part = BytesToByteLevel(part);
      return parts;
    });
  }
  bool IsByteLevel() const override { return true; }

 private:
  bool add_prefix_space_;
  Pattern gpt2_;
  bool use_regex_;
};

enum class PrependScheme { kAlways, kFirst, kNever };

// pre_tokenizers/metaspace.rs.
class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(scheme), split_(split) {}
  absl::Status PreTokenize(std::vector<Piece>& pieces) const override {
    const Pattern delimiter = Pattern::Literal(replacement_);
    return SplitEach(pieces, [&](const Piece& piece) -> absl::StatusOr<std::vector<std::string>> {
      std::string text = absl::StrReplaceAll(piece.text, {{" ", replacement_}});
      const bool prepend = scheme_ == PrependScheme::kAlways ||
                           (scheme_ == PrependScheme::kFirst && piece.at_original_start);
      if (prepend && !absl::StartsWith(text, replacement_)) text = Cat(replacement_, text);
      if (!split_) return std::vector<std::string>{std::move(text)};
      return SplitText(text, delimiter, SplitBehavior::kMergedWithNext, false);
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}
  absl::Status PreTokenize(std::vector<Piece>& pieces) const override {
    for (const auto& step : steps_) {
      if (absl::Status s = step->PreTokenize(pieces); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  bool IsByteLevel() const override {
    for (const auto& step : steps_) {
      if (step->IsByteLevel()) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

absl::StatusOr<std::unique_ptr<PreTokenizer>> MakeRegexSplit(std::string_view regex,
                                                             SplitBehavior behavior, bool invert,
                                                             std::string_view path) {
  absl::StatusOr<Pattern> pattern = Pattern::Regex(regex, path);
  if (!pattern.ok()) return pattern.status();
  return std::make_unique<SplitPreTokenizer>(*std::move(pattern), behavior, invert);
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParseMetaspace(const Json& json,
                                                             std::string_view path) {
  absl::StatusOr<std::string> replacement = GetString(json, "replacement", path);
  if (!replacement.ok()) return replacement.status();
  PrependScheme scheme = PrependScheme::kAlways;
  absl::StatusOr<std::optional<std::string>> name = GetOptionalString(json, "prepend_scheme", path);
  if (!name.ok()) return name.status();
  if (name->has_value()) {
    if (**name == "always") {
      scheme = PrependScheme::kAlways;
    } else if (**name == "first") {
      scheme = PrependScheme::kFirst;
    } else if (**name == "never") {
      scheme = PrependScheme::kNever;
    } else {
      return absl::InvalidArgumentError(
          Cat(JsonPath(path, "prepend_scheme"), ": unknown value \"", **name, "\""));
    }
  } else {
    // Files written before tokenizers 0.15 carry add_prefix_space instead.
    absl::StatusOr<bool> add_prefix_space = GetBool(json, "add_prefix_space", path, true);
    if (!add_prefix_space.ok()) return add_prefix_space.status();
    scheme = *add_prefix_space ? PrependScheme::kAlways : PrependScheme::kNever;
  }
  absl::StatusOr<bool> split = GetBool(json, "split", path, true);
  if (!split.ok()) return split.status();
  return std::make_unique<MetaspacePreTokenizer>(*std::move(replacement), scheme, *split);
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& json,
                                                                std::string_view path, int depth) {
  if (json.is_null()) return nullptr;
  if (depth > kMaxConfigDepth) {
    return absl::InvalidArgumentError(Cat(path, ": pre-tokenizers nested too deeply"));
  }
  absl::StatusOr<std::string> type = GetType(json, path);
  if (!type.ok()) return type.status();
  if (*type == "ByteLevel") {
    absl::StatusOr<bool> add_prefix_space = GetBool(json, "add_prefix_space", path, true);
    if (!add_prefix_space.ok()) return add_prefix_space.status();
    absl::StatusOr<bool> use_regex = GetBool(json, "use_regex", path, true);
    if (!use_regex.ok()) return use_regex.status();
    absl::StatusOr<Pattern> gpt2 = Pattern::Regex(kGpt2Pattern, path);
    if (!gpt2.ok()) return gpt2.status();
    return std::make_unique<ByteLevelPreTokenizer>(*add_prefix_space, *std::move(gpt2), *use_regex);
  }
  if (*type == "Split") {
    absl::StatusOr<PatternSpec> spec = GetPattern(json, "pattern", path);
    if (!spec.ok()) return spec.status();
    absl::StatusOr<std::string> behavior_name = GetString(json, "behavior", path);
    if (!behavior_name.ok()) return behavior_name.status();
    absl::StatusOr<SplitBehavior> behavior =
        ParseSplitBehavior(*behavior_name, JsonPath(path, "behavior"));
    if (!behavior.ok()) return behavior.status();
    absl::StatusOr<bool> invert = GetBool(json, "invert", path, false);
    if (!invert.ok()) return invert.status();
    if (spec->is_regex) {
      return MakeRegexSplit(spec->text, *behavior, *invert, JsonPath(path, "pattern"));
    }
    return std::make_unique<SplitPreTokenizer>(Pattern::Literal(spec->text), *behavior, *invert);
  }
  if (*type == "Metaspace") return ParseMetaspace(json, path);
  if (*type == "Digits") {
    // pre_tokenizers/digits.rs: char::is_numeric is the Unicode N category.
    absl::StatusOr<bool> individual = GetBool(json, "individual_digits", path, false);
    if (!individual.ok()) return individual.status();
    return MakeRegexSplit(R"(\p{N})",
                          *individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous,
                          false, path);
  }
  if (*type == "Whitespace") {
    // pre_tokenizers/whitespace.rs: keep runs of \w and runs of other non-space.
    return MakeRegexSplit(R"(\w+|[^\w\s]+)", SplitBehavior::kRemoved, true, path);
  }
  if (*type == "WhitespaceSplit") {
    // Split on char::is_whitespace, spelled out because PCRE2's \s is a different set.
    return MakeRegexSplit(
        R"([\t\n\x{0B}\f\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}])",
        SplitBehavior::kRemoved, false, path);
  }
  if (*type == "Sequence") {
    auto steps = ParseSequence<PreTokenizer>(json, "pretokenizers", path, depth, ParsePreTokenizer);
    if (!steps.ok()) return steps.status();
    return std::make_unique<SequencePreTokenizer>(*std::move(steps));
  }
  return absl::UnimplementedError(
      Cat(path, ": pre-tokenizer type \"", *type, "\" is not supported"));
}

}  // namespace rlhf::tokenizer
