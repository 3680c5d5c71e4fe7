#include "common/tokenizer/normalizer.h"

#include <cstdlib>
#include <utility>
#include <vector>

#include <utf8proc.h>

#include "absl/status/status.h"
#include "common/tokenizer/cat.h"
#include "common/tokenizer/pattern.h"
#include "common/tokenizer/utf8.h"

namespace rlhf::tokenizer {
namespace {

// normalizers/unicode.rs; utf8proc implements the same Unicode normalization forms.
class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(utf8proc_option_t options) : options_(options) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    bool failed = false;
    std::string out = MapValidRuns(text, [&](std::string_view run) -> std::string {
      utf8proc_uint8_t* mapped = nullptr;
      utf8proc_ssize_t n =
          utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                       static_cast<utf8proc_ssize_t>(run.size()), &mapped, options_);
      if (n < 0) {
        failed = true;
        return std::string(run);
      }
      std::string result(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
      std::free(mapped);
      return result;
    });
    if (failed) return absl::InternalError("utf8proc failed to normalize the input");
    return out;
  }

 private:
  utf8proc_option_t options_;
};

// normalizers/utils.rs Lowercase: char::to_lowercase for each character.
class LowercaseNormalizer final : public Normalizer {
 public:
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    return MapValidRuns(text, [](std::string_view run) {
      std::string out;
      out.reserve(run.size());
      for (size_t pos = 0; pos < run.size();) {
        Utf8Step step = DecodeUtf8(run, pos);
        pos += step.length;
        if (step.codepoint == 0x130) {  // the one multi-character lowercase mapping
          out += "i\xCC\x87";
          continue;
        }
        AppendUtf8(out, static_cast<char32_t>(
                            utf8proc_tolower(static_cast<utf8proc_int32_t>(step.codepoint))));
      }
      return out;
    });
  }
};

// normalizers/strip.rs Strip: removes leading/trailing char::is_whitespace.
class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    size_t begin = 0, end = text.size();
    if (left_) {
      while (begin < end) {
        Utf8Step step = DecodeUtf8(text, begin);
        if (!step.valid || !IsWhitespace(step.codepoint)) break;
        begin += step.length;
      }
    }
    if (right_) {
      for (Utf8Step step = DecodeUtf8Before(text, end);
           end > begin && step.valid && IsWhitespace(step.codepoint);
           step = DecodeUtf8Before(text, end)) {
        end -= step.length;
      }
    }
    return std::string(text.substr(begin, end - begin));
  }

 private:
  bool left_, right_;
};

// normalizers/prepend.rs: prepends only to non-empty text.
class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    if (text.empty()) return std::string();
    return Cat(prepend_, text);
  }

 private:
  std::string prepend_;
};

// normalizers/replace.rs.
class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    return ReplaceAll(text, pattern_, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    std::string current(text);
    for (const auto& step : steps_) {
      absl::StatusOr<std::string> next = step->Normalize(current);
      if (!next.ok()) return next.status();
      current = *std::move(next);
    }
    return current;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& json, std::string_view path,
                                                            int depth) {
  if (json.is_null()) return nullptr;
  if (depth > kMaxConfigDepth) {
    return absl::InvalidArgumentError(Cat(path, ": normalizers nested too deeply"));
  }
  absl::StatusOr<std::string> type = GetType(json, path);
  if (!type.ok()) return type.status();
  constexpr utf8proc_option_t kStable = UTF8PROC_STABLE;
  if (*type == "NFC") {
    return std::make_unique<UnicodeNormalizer>(
        static_cast<utf8proc_option_t>(kStable | UTF8PROC_COMPOSE));
  }
  if (*type == "NFD") {
    return std::make_unique<UnicodeNormalizer>(
        static_cast<utf8proc_option_t>(kStable | UTF8PROC_DECOMPOSE));
  }
  if (*type == "NFKC") {
    return std::make_unique<UnicodeNormalizer>(
        static_cast<utf8proc_option_t>(kStable | UTF8PROC_COMPOSE | UTF8PROC_COMPAT));
  }
  if (*type == "NFKD") {
    return std::make_unique<UnicodeNormalizer>(
        static_cast<utf8proc_option_t>(kStable | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT));
  }
  if (*type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (*type == "Strip") {
    absl::StatusOr<bool> left = GetBool(json, "strip_left", path, true);
    if (!left.ok()) return left.status();
    absl::StatusOr<bool> right = GetBool(json, "strip_right", path, true);
    if (!right.ok()) return right.status();
    return std::make_unique<StripNormalizer>(*left, *right);
  }
  if (*type == "Prepend") {
    absl::StatusOr<std::string> prepend = GetString(json, "prepend", path);
    if (!prepend.ok()) return prepend.status();
    return std::make_unique<PrependNormalizer>(*std::move(prepend));
  }
  if (*type == "Replace") {
    absl::StatusOr<ReplaceSpec> replace = GetReplace(json, path);
    if (!replace.ok()) return replace.status();
    return std::make_unique<ReplaceNormalizer>(std::move(replace->pattern),
                                               std::move(replace->content));
  }
  if (*type == "Sequence") {
    auto steps = ParseSequence<Normalizer>(json, "normalizers", path, depth, ParseNormalizer);
    if (!steps.ok()) return steps.status();
    return std::make_unique<SequenceNormalizer>(*std::move(steps));
  }
  return absl::UnimplementedError(Cat(path, ": normalizer type \"", *type, "\" is not supported"));
}

}  // namespace rlhf::tokenizer
