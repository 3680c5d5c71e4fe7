#include "common/io/json_util.h"

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace rlhf::io::internal {
namespace {

constexpr size_t kMaxQuotedChars = 200;

// Length of the UTF-8 sequence starting at text[i], or 0 if it is not well formed.
// Follows the Unicode "well-formed UTF-8 byte sequences" table (Table 3-7).
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  const uint8_t b0 = byte(i);
  if (b0 < 0x80) return 1;
  size_t len = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;  // overlong
    if (b0 == 0xED) hi = 0x9F;  // surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;  // overlong
    if (b0 == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (text.size() - i < len) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

}  // namespace

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const size_t len = Utf8SequenceLength(text, i);
    if (len == 0) return i;
    i += len;
  }
  return std::nullopt;
}

absl::StatusOr<nlohmann::json> ParseJsonStrict(std::string_view text,
                                               std::vector<std::string>* top_level_keys) {
  // One key set per open object; nlohmann's DOM parser keeps the last of repeated keys.
  std::vector<absl::flat_hash_set<std::string>> open_objects;
  std::string duplicate;
  auto on_event = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end && !open_objects.empty()) {
      open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty() && duplicate.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second) duplicate = key;
      if (top_level_keys != nullptr && open_objects.size() == 1) top_level_keys->push_back(key);
    }
    return true;
  };
  nlohmann::json result;
  try {
    result = nlohmann::json::parse(text.begin(), text.end(), on_event);
  } catch (const std::exception& e) {
    // nlohmann throws parse_error for bad syntax; bad_alloc is possible on huge inputs.
    return absl::InvalidArgumentError(e.what());
  }
  if (!duplicate.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("repeated key ", Quote(duplicate)));
  }
  return result;
}

std::string Quote(std::string_view text) {
  if (text.size() <= kMaxQuotedChars) return absl::StrCat("\"", ToAbsl(text), "\"");
  size_t cut = kMaxQuotedChars;
  // Do not split a UTF-8 sequence: back up to a lead byte.
  while (cut > 0 && (static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat("\"", ToAbsl(text.substr(0, cut)), "\"... (", text.size(), " bytes)");
}

void AppendJsonString(std::string* out, std::string_view text) {
  out->push_back('"');
  for (char c : text) {
    const auto u = static_cast<uint8_t>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      // Control characters must be escaped in JSON (RFC 8259 section 7).
      absl::StrAppendFormat(out, "\\u%04x", u);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace rlhf::io::internal
