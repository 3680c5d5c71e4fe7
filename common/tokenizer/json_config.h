#pragma once

// Reading tokenizer.json-style configuration without exceptions. Every error names the
// JSON path it is about (e.g. "model.merges[3]"), so a user can find it in the file.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/tokenizer/pattern.h"

namespace rlhf::tokenizer {

using Json = nlohmann::json;

// Nesting limit for Sequence normalizers/pre-tokenizers/decoders: keeps a hostile file
// from recursing the parser off the stack.
inline constexpr int kMaxConfigDepth = 32;

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

// Parses JSON text; `source` names the file or buffer in error messages.
absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view source);

// "a.b" + "c" -> "a.b.c"; "a" + 3 -> "a[3]".
std::string JsonPath(std::string_view parent, std::string_view key);
std::string JsonPath(std::string_view parent, size_t index);

// Required object member of a given kind; errors name `path.key`.
absl::StatusOr<std::string> GetString(const Json& object, std::string_view key,
                                      std::string_view path);
// A string member that may be missing or null.
absl::StatusOr<std::optional<std::string>> GetOptionalString(const Json& object,
                                                             std::string_view key,
                                                             std::string_view path);
absl::StatusOr<bool> GetBool(const Json& object, std::string_view key, std::string_view path,
                             bool default_value);
absl::StatusOr<int64_t> GetInt(const Json& object, std::string_view key, std::string_view path,
                               int64_t default_value);
// A member that must be an array or an object (or is missing: returns nullptr).
const Json* FindMember(const Json& object, std::string_view key);

// The "type" tag of a normalizer/pre-tokenizer/decoder/post-processor/model object.
absl::StatusOr<std::string> GetType(const Json& object, std::string_view path);

// Pattern objects as tokenizers serialises them: {"String": "..."} or {"Regex": "..."}.
struct PatternSpec {
  std::string text;
  bool is_regex = false;
};
absl::StatusOr<PatternSpec> GetPattern(const Json& object, std::string_view key,
                                       std::string_view path);

// A "Replace" normalizer/decoder: its "pattern" (compiled; regex errors name
// `path.pattern`) and its "content".
struct ReplaceSpec {
  Pattern pattern;
  std::string content;
};
absl::StatusOr<ReplaceSpec> GetReplace(const Json& object, std::string_view path);

// A "Sequence" normalizer/pre-tokenizer/decoder: each element of the array member `key`
// parsed by parse(element, element_path, depth + 1); null steps are dropped.
template <typename Step, typename ParseFn>
absl::StatusOr<std::vector<std::unique_ptr<Step>>> ParseSequence(const Json& object,
                                                                 std::string_view key,
                                                                 std::string_view path, int depth,
                                                                 ParseFn parse) {
  const Json* list = FindMember(object, key);
  const std::string list_path = JsonPath(path, key);
  if (list == nullptr || !list->is_array()) {
    return absl::InvalidArgumentError(list_path + ": expected an array");
  }
  std::vector<std::unique_ptr<Step>> steps;
  for (size_t i = 0; i < list->size(); ++i) {
    absl::StatusOr<std::unique_ptr<Step>> step =
        parse((*list)[i], JsonPath(list_path, i), depth + 1);
    if (!step.ok()) return step.status();
    if (*step != nullptr) steps.push_back(*std::move(step));
  }
  return steps;
}

}  // namespace rlhf::tokenizer
