#include "common/tokenizer/decoder.h"

#include <optional>
#include <utility>

#include "absl/strings/str_join.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/cat.h"
#include "common/tokenizer/pattern.h"
#include "common/tokenizer/utf8.h"

namespace rlhf::tokenizer {
namespace {

// decoders/byte_level.rs: map characters back to bytes (a token with any character
// outside the map keeps its own UTF-8 bytes), then String::from_utf8_lossy.
class ByteLevelDecoder final : public Decoder {
 public:
  absl::Status DecodeChain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      std::string mapped;
      bool all_mapped = true;
      for (size_t pos = 0; pos < token.size() && all_mapped;) {
        Utf8Step step = DecodeUtf8(token, pos);
        pos += step.length;
        std::optional<uint8_t> byte =
            step.valid ? ByteLevelCharToByte(step.codepoint) : std::nullopt;
        if (byte.has_value()) {
          mapped.push_back(static_cast<char>(*byte));
        } else {
          all_mapped = false;
        }
      }
      bytes += all_mapped ? mapped : token;
    }
    tokens.assign(1, Utf8Lossy(bytes));
    return absl::OkStatus();
  }
};

// decoders/byte_fallback.rs: runs of <0xXX> tokens become their bytes, or one U+FFFD per
// byte when the run is not valid UTF-8.
class ByteFallbackDecoder final : public Decoder {
 public:
  absl::Status DecodeChain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (!FindInvalidUtf8(pending).has_value()) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < pending.size(); ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& token : tokens) {
      if (std::optional<uint8_t> byte = ParseByteToken(token)) {
        pending.push_back(static_cast<char>(*byte));
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    tokens = std::move(out);
    return absl::OkStatus();
  }

 private:
  static std::optional<uint8_t> ParseByteToken(std::string_view token) {
    if (token.size() != 6 || token.substr(0, 3) != "<0x" || token[5] != '>') return std::nullopt;
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = hex(token[3]), lo = hex(token[4]);
    if (hi < 0 || lo < 0) return std::nullopt;
    return static_cast<uint8_t>(hi * 16 + lo);
  }
};

// decoders/fuse.rs.
class FuseDecoder final : public Decoder {
 public:
  absl::Status DecodeChain(std::vector<std::string>& tokens) const override {
    tokens.assign(1, absl::StrJoin(tokens, ""));
    return absl::OkStatus();
  }
};

// decoders/strip.rs: removes up to `start` leading and `stop` trailing `content` chars
// from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  absl::Status DecodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::string_view view = token;
      for (size_t i = 0; i < start_ && !content_.empty() && view.starts_with(content_); ++i) {
        view.remove_prefix(content_.size());
      }
      for (size_t i = 0; i < stop_ && !content_.empty() && view.ends_with(content_); ++i) {
        view.remove_suffix(content_.size());
      }
      token = std::string(view);
    }
    return absl::OkStatus();
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

// decoders/mod.rs Replace (shares the normalizer's pattern semantics).
class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  absl::Status DecodeChain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      absl::StatusOr<std::string> replaced = ReplaceAll(token, pattern_, content_);
      if (!replaced.ok()) return replaced.status();
      token = *std::move(replaced);
    }
    return absl::OkStatus();
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// pre_tokenizers/metaspace.rs (decoder side): the replacement becomes a space, except in
// the first token where every one of them is dropped unless prepend_scheme is "never".
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  absl::Status DecodeChain(std::vector<std::string>& tokens) const override {
    if (replacement_.empty()) return absl::OkStatus();
    for (size_t i = 0; i < tokens.size(); ++i) {
      const std::string_view with = (i == 0 && strip_first_) ? "" : " ";
      absl::StatusOr<std::string> replaced =
          ReplaceAll(tokens[i], Pattern::Literal(replacement_), with);
      if (!replaced.ok()) return replaced.status();
      tokens[i] = *std::move(replaced);
    }
    return absl::OkStatus();
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  absl::Status DecodeChain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) {
      if (absl::Status s = step->DecodeChain(tokens); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

absl::StatusOr<std::unique_ptr<Decoder>> ParseMetaspaceDecoder(const Json& json,
                                                               std::string_view path) {
  absl::StatusOr<std::string> replacement = GetString(json, "replacement", path);
  if (!replacement.ok()) return replacement.status();
  bool strip_first = true;
  absl::StatusOr<std::optional<std::string>> scheme =
      GetOptionalString(json, "prepend_scheme", path);
  if (!scheme.ok()) return scheme.status();
  if (scheme->has_value()) {
    if (**scheme != "always" && **scheme != "first" && **scheme != "never") {
      return absl::InvalidArgumentError(
          Cat(JsonPath(path, "prepend_scheme"), ": unknown value \"", **scheme, "\""));
    }
    strip_first = **scheme != "never";
  } else {
    absl::StatusOr<bool> add_prefix_space = GetBool(json, "add_prefix_space", path, true);
    if (!add_prefix_space.ok()) return add_prefix_space.status();
    strip_first = *add_prefix_space;
  }
  return std::make_unique<MetaspaceDecoder>(*std::move(replacement), strip_first);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const Json& json, std::string_view path,
                                                      int depth) {
  if (json.is_null()) return nullptr;
  if (depth > kMaxConfigDepth) {
    return absl::InvalidArgumentError(Cat(path, ": decoders nested too deeply"));
  }
  absl::StatusOr<std::string> type = GetType(json, path);
  if (!type.ok()) return type.status();
  if (*type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (*type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (*type == "Fuse") return std::make_unique<FuseDecoder>();
  if (*type == "Metaspace") return ParseMetaspaceDecoder(json, path);
  if (*type == "Strip") {
    absl::StatusOr<std::string> content = GetString(json, "content", path);
    if (!content.ok()) return content.status();
    absl::StatusOr<int64_t> start = GetInt(json, "start", path, 0);
    if (!start.ok()) return start.status();
    absl::StatusOr<int64_t> stop = GetInt(json, "stop", path, 0);
    if (!stop.ok()) return stop.status();
    if (*start < 0 || *stop < 0) {
      return absl::InvalidArgumentError(Cat(path, ": start and stop must be >= 0"));
    }
    return std::make_unique<StripDecoder>(*std::move(content), static_cast<size_t>(*start),
                                          static_cast<size_t>(*stop));
  }
  if (*type == "Replace") {
    absl::StatusOr<ReplaceSpec> replace = GetReplace(json, path);
    if (!replace.ok()) return replace.status();
    return std::make_unique<ReplaceDecoder>(std::move(replace->pattern),
                                            std::move(replace->content));
  }
  if (*type == "Sequence") {
    auto steps = ParseSequence<Decoder>(json, "decoders", path, depth, ParseDecoder);
    if (!steps.ok()) return steps.status();
    return std::make_unique<SequenceDecoder>(*std::move(steps));
  }
  return absl::UnimplementedError(Cat(path, ": decoder type \"", *type, "\" is not supported"));
}

}  // namespace rlhf::tokenizer
