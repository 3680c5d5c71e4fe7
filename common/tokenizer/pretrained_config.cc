#include "common/tokenizer/pretrained_config.h"

#include "absl/status/status.h"
#include "common/tokenizer/cat.h"
#include "common/tokenizer/json_config.h"

namespace rlhf::tokenizer {
namespace {

absl::StatusOr<std::optional<Json>> ReadOptionalJson(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error)) return std::optional<Json>();
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<Json> json = ParseJson(*text, path.string());
  if (!json.ok()) return json.status();
  if (!json->is_object()) {
    return absl::InvalidArgumentError(Cat(path.string(), ": expected a JSON object"));
  }
  return std::optional<Json>(*std::move(json));
}

// transformers accepts "bos_token": "<s>" or {"__type": "AddedToken", "content": "<s>"}.
absl::StatusOr<std::optional<std::string>> SpecialToken(const Json& config, const char* key,
                                                        std::string_view file) {
  const Json* value = FindMember(config, key);
  if (value == nullptr || value->is_null()) return std::optional<std::string>();
  if (value->is_string()) return std::optional<std::string>(value->get<std::string>());
  if (value->is_object()) {
    absl::StatusOr<std::string> content = GetString(*value, "content", JsonPath(file, key));
    if (!content.ok()) return content.status();
    return std::optional<std::string>(*std::move(content));
  }
  return absl::InvalidArgumentError(
      Cat(file, ": ", key, " must be a string, an object with \"content\", or null"));
}

absl::StatusOr<std::optional<bool>> OptionalBool(const Json& config, const char* key,
                                                 std::string_view file) {
  const Json* value = FindMember(config, key);
  if (value == nullptr || value->is_null()) return std::optional<bool>();
  if (!value->is_boolean()) {
    return absl::InvalidArgumentError(Cat(file, ": ", key, " must be a boolean"));
  }
  return std::optional<bool>(value->get<bool>());
}

absl::StatusOr<std::vector<int64_t>> IdList(const Json& config, const char* key,
                                            std::string_view file) {
  const Json* value = FindMember(config, key);
  std::vector<int64_t> ids;
  if (value == nullptr || value->is_null()) return ids;
  const auto bad = [&] {
    return absl::InvalidArgumentError(
        Cat(file, ": ", key, " must be a non-negative integer or a list of them"));
  };
  if (value->is_array()) {
    for (const Json& id : *value) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0) return bad();
      ids.push_back(id.get<int64_t>());
    }
  } else if (value->is_number_integer() && value->get<int64_t>() >= 0) {
    ids.push_back(value->get<int64_t>());
  } else {
    return bad();
  }
  return ids;
}

absl::Status ReadTokenizerConfig(const Json& json, PretrainedConfig& config) {
  constexpr std::string_view kFile = "tokenizer_config.json";
  config.has_tokenizer_config = true;
  absl::StatusOr<std::optional<std::string>> cls =
      GetOptionalString(json, "tokenizer_class", kFile);
  if (!cls.ok()) return cls.status();
  config.tokenizer_class = *cls;
  struct TokenField {
    const char* key;
    std::optional<std::string>* out;
  };
  for (const TokenField& field :
       {TokenField{"bos_token", &config.bos_token}, TokenField{"eos_token", &config.eos_token},
        TokenField{"pad_token", &config.pad_token}}) {
    absl::StatusOr<std::optional<std::string>> token = SpecialToken(json, field.key, kFile);
    if (!token.ok()) return token.status();
    *field.out = *std::move(token);
  }
  struct BoolField {
    const char* key;
    std::optional<bool>* out;
  };
  for (const BoolField& field : {BoolField{"add_bos_token", &config.add_bos_token},
                                 BoolField{"add_eos_token", &config.add_eos_token},
                                 BoolField{"add_prefix_space", &config.add_prefix_space},
                                 BoolField{"split_special_tokens", &config.split_special_tokens}}) {
    absl::StatusOr<std::optional<bool>> value = OptionalBool(json, field.key, kFile);
    if (!value.ok()) return value.status();
    *field.out = *value;
  }
  return absl::OkStatus();
}

absl::Status ReadGenerationConfig(const Json& json, PretrainedConfig& config) {
  constexpr std::string_view kFile = "generation_config.json";
  absl::StatusOr<std::vector<int64_t>> eos = IdList(json, "eos_token_id", kFile);
  if (!eos.ok()) return eos.status();
  config.generation_eos_ids = *std::move(eos);
  for (auto [key, out] : {std::pair{"bos_token_id", &config.generation_bos_id},
                          std::pair{"pad_token_id", &config.generation_pad_id}}) {
    const Json* value = FindMember(json, key);
    if (value == nullptr || value->is_null()) continue;
    if (!value->is_number_integer() || value->get<int64_t>() < 0) {
      return absl::InvalidArgumentError(Cat(kFile, ": ", key, " must be a non-negative integer"));
    }
    *out = value->get<int64_t>();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PretrainedConfig> LoadPretrainedConfig(const std::filesystem::path& dir) {
  PretrainedConfig config;
  absl::StatusOr<std::optional<Json>> tokenizer_config =
      ReadOptionalJson(dir / "tokenizer_config.json");
  if (!tokenizer_config.ok()) return tokenizer_config.status();
  if (tokenizer_config->has_value()) {
    if (absl::Status s = ReadTokenizerConfig(**tokenizer_config, config); !s.ok()) return s;
  }
  absl::StatusOr<std::optional<Json>> generation_config =
      ReadOptionalJson(dir / "generation_config.json");
  if (!generation_config.ok()) return generation_config.status();
  if (generation_config->has_value()) {
    if (absl::Status s = ReadGenerationConfig(**generation_config, config); !s.ok()) return s;
  }
  return config;
}

}  // namespace rlhf::tokenizer
