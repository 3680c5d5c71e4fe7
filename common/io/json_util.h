#pragma once

// Helpers shared by the safetensors reader, writer and index parser. Internal to rlhf_io.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace rlhf::io::internal {

// Byte offset of the first byte that makes `text` invalid UTF-8 (overlong forms, surrogates
// and code points past U+10FFFF count as invalid, as in Rust's str::from_utf8), or nullopt.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

// Parses `text` as JSON without letting an exception escape. Stricter than nlohmann's
// default in one way: a repeated key in any object is an error, because it would silently
// drop a tensor or a metadata entry. Errors are InvalidArgument with the parser's message.
// If `top_level_keys` is given, it receives the outermost object's keys in document order
// (nlohmann::json itself keeps keys sorted).
absl::StatusOr<nlohmann::json> ParseJsonStrict(std::string_view text,
                                               std::vector<std::string>* top_level_keys = nullptr);

// Abseil here is built with its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), which
// does not convert implicitly from std::string_view; this bridges the two.
inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

// `text` in double quotes for an error message, shortened to a readable length so that a
// hostile file cannot blow up a log line.
std::string Quote(std::string_view text);

// Appends `text` as a JSON string literal (with quotes). `text` must be valid UTF-8.
void AppendJsonString(std::string* out, std::string_view text);

}  // namespace rlhf::io::internal
