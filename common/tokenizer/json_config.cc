#include "common/tokenizer/json_config.h"

#include <fstream>
#include <sstream>

#include "common/tokenizer/cat.h"

namespace rlhf::tokenizer {

absl::StatusOr<std::string> ReadFileToString(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(Cat("cannot open ", path.string()));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(Cat("error reading ", path.string()));
  return std::move(buffer).str();
}

absl::StatusOr<Json> ParseJson(std::string_view text, std::string_view source) {
  // nlohmann-json reports syntax errors by exception; this is the edge where they stop.
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::exception& e) {
    return absl::InvalidArgumentError(Cat(source, ": malformed JSON: ", e.what()));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(Cat(source, ": cannot parse JSON: ", e.what()));
  }
}

std::string JsonPath(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return Cat(parent, ".", key);
}

std::string JsonPath(std::string_view parent, size_t index) { return Cat(parent, "[", index, "]"); }

const Json* FindMember(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end()) return nullptr;
  return &*it;
}

absl::StatusOr<std::string> GetString(const Json& object, std::string_view key,
                                      std::string_view path) {
  const Json* value = FindMember(object, key);
  if (value == nullptr || !value->is_string()) {
    return absl::InvalidArgumentError(
        Cat(JsonPath(path, key), ": expected a string",
            value == nullptr ? " (missing)" : Cat(", got ", value->type_name())));
  }
  return value->get<std::string>();
}

absl::StatusOr<std::optional<std::string>> GetOptionalString(const Json& object,
                                                             std::string_view key,
                                                             std::string_view path) {
  const Json* value = FindMember(object, key);
  if (value == nullptr || value->is_null()) return std::optional<std::string>();
  if (!value->is_string()) {
    return absl::InvalidArgumentError(
        Cat(JsonPath(path, key), ": expected a string or null, got ", value->type_name()));
  }
  return std::optional<std::string>(value->get<std::string>());
}

absl::StatusOr<bool> GetBool(const Json& object, std::string_view key, std::string_view path,
                             bool default_value) {
  const Json* value = FindMember(object, key);
  if (value == nullptr || value->is_null()) return default_value;
  if (!value->is_boolean()) {
    return absl::InvalidArgumentError(
        Cat(JsonPath(path, key), ": expected a boolean, got ", value->type_name()));
  }
  return value->get<bool>();
}

absl::StatusOr<int64_t> GetInt(const Json& object, std::string_view key, std::string_view path,
                               int64_t default_value) {
  const Json* value = FindMember(object, key);
  if (value == nullptr || value->is_null()) return default_value;
  if (!value->is_number_integer()) {
    return absl::InvalidArgumentError(
        Cat(JsonPath(path, key), ": expected an integer, got ", value->type_name()));
  }
  return value->get<int64_t>();
}

absl::StatusOr<std::string> GetType(const Json& object, std::string_view path) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(Cat(path, ": expected an object, got ", object.type_name()));
  }
  return GetString(object, "type", path);
}

absl::StatusOr<PatternSpec> GetPattern(const Json& object, std::string_view key,
                                       std::string_view path) {
  const std::string pattern_path = JsonPath(path, key);
  const Json* value = FindMember(object, key);
  if (value == nullptr || !value->is_object() || value->size() != 1) {
    return absl::InvalidArgumentError(
        Cat(pattern_path, R"(: expected {"String": ...} or {"Regex": ...})"));
  }
  if (const Json* s = FindMember(*value, "String"); s != nullptr && s->is_string()) {
    return PatternSpec{s->get<std::string>(), false};
  }
  if (const Json* r = FindMember(*value, "Regex"); r != nullptr && r->is_string()) {
    return PatternSpec{r->get<std::string>(), true};
  }
  return absl::InvalidArgumentError(
      Cat(pattern_path, R"(: expected {"String": ...} or {"Regex": ...})"));
}

absl::StatusOr<ReplaceSpec> GetReplace(const Json& object, std::string_view path) {
  absl::StatusOr<PatternSpec> spec = GetPattern(object, "pattern", path);
  if (!spec.ok()) return spec.status();
  absl::StatusOr<std::string> content = GetString(object, "content", path);
  if (!content.ok()) return content.status();
  absl::StatusOr<Pattern> pattern = spec->is_regex
                                        ? Pattern::Regex(spec->text, JsonPath(path, "pattern"))
                                        : Pattern::Literal(spec->text);
  if (!pattern.ok()) return pattern.status();
  return ReplaceSpec{*std::move(pattern), *std::move(content)};
}

}  // namespace rlhf::tokenizer
