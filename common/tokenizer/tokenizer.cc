#include "common/tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"
#include "common/tokenizer/cat.h"
#include "common/tokenizer/pretrained_config.h"
#include "common/tokenizer/utf8.h"

namespace rlhf::tokenizer {

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(const Json& json,
                                                               std::string_view source) {
  // Every field is type-checked before it is read; this only keeps a missed case in
  // nlohmann-json from throwing out of the library.
  try {
    return Build(json, source);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(Cat(source, ": ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Build(const Json& json,
                                                            std::string_view source) {
  auto in_source = [&](const absl::Status& status) {
    return absl::Status(status.code(), Cat(source, ": ", status.message()));
  };
  if (!json.is_object()) return in_source(absl::InvalidArgumentError("expected a JSON object"));
  const Json kNull;
  auto member = [&](const char* key) -> const Json& {
    const Json* value = FindMember(json, key);
    return value == nullptr ? kNull : *value;
  };
  const Json& model_json = member("model");
  if (!model_json.is_object()) {
    return in_source(absl::InvalidArgumentError("model: missing (expected an object)"));
  }
  // Files from before tokenizers 0.10 have no model.type; they are all BPE or WordPiece.
  absl::StatusOr<std::string> model_type =
      FindMember(model_json, "type") == nullptr && FindMember(model_json, "merges") != nullptr
          ? absl::StatusOr<std::string>("BPE")
          : GetType(model_json, "model");
  if (!model_type.ok()) return in_source(model_type.status());
  if (*model_type != "BPE") {
    return in_source(absl::UnimplementedError(
        Cat("model.type: \"", *model_type, "\" is not supported (only BPE models are)")));
  }

  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer());
  absl::StatusOr<std::unique_ptr<BpeModel>> model = BpeModel::FromJson(model_json, "model");
  if (!model.ok()) return in_source(model.status());
  tokenizer->model_ = *std::move(model);
  absl::StatusOr<std::unique_ptr<Normalizer>> normalizer =
      ParseNormalizer(member("normalizer"), "normalizer");
  if (!normalizer.ok()) return in_source(normalizer.status());
  tokenizer->normalizer_ = *std::move(normalizer);
  absl::StatusOr<std::unique_ptr<PreTokenizer>> pre_tokenizer =
      ParsePreTokenizer(member("pre_tokenizer"), "pre_tokenizer");
  if (!pre_tokenizer.ok()) return in_source(pre_tokenizer.status());
  tokenizer->pre_tokenizer_ = *std::move(pre_tokenizer);
  absl::StatusOr<std::unique_ptr<PostProcessor>> post_processor =
      ParsePostProcessor(member("post_processor"), "post_processor");
  if (!post_processor.ok()) return in_source(post_processor.status());
  tokenizer->post_processor_ = *std::move(post_processor);
  absl::StatusOr<std::unique_ptr<Decoder>> decoder = ParseDecoder(member("decoder"), "decoder");
  if (!decoder.ok()) return in_source(decoder.status());
  tokenizer->decoder_ = *std::move(decoder);
  absl::StatusOr<AddedVocabulary> added = AddedVocabulary::FromJson(
      member("added_tokens"), "added_tokens", tokenizer->normalizer_.get());
  if (!added.ok()) return in_source(added.status());
  tokenizer->added_ = *std::move(added);

  if (tokenizer->post_processor_ != nullptr) {
    // tokenizers would emit such an id and drop it again on decode; refuse it up front.
    for (int64_t id : tokenizer->post_processor_->SpecialIds()) {
      if (!tokenizer->IdToToken(id).has_value()) {
        return in_source(absl::InvalidArgumentError(
            Cat("post_processor: special token id ", id, " is not in the vocabulary")));
      }
    }
  }
  tokenizer->byte_level_ =
      tokenizer->pre_tokenizer_ != nullptr && tokenizer->pre_tokenizer_->IsByteLevel();
  tokenizer->vocab_size_ = std::max(tokenizer->model_->max_id(), tokenizer->added_.max_id()) + 1;
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromString(std::string_view text) {
  absl::StatusOr<Json> json = ParseJson(text, "tokenizer.json");
  if (!json.ok()) return json.status();
  return FromJson(*json, "tokenizer.json");
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(
    const std::filesystem::path& tokenizer_json) {
  absl::StatusOr<std::string> text = ReadFileToString(tokenizer_json);
  if (!text.ok()) return text.status();
  absl::StatusOr<Json> json = ParseJson(*text, tokenizer_json.string());
  if (!json.ok()) return json.status();
  return FromJson(*json, tokenizer_json.string());
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromDirectory(
    const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "tokenizer.json";
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<Json> json = ParseJson(*text, path.string());
  if (!json.ok()) return json.status();
  absl::StatusOr<PretrainedConfig> config = LoadPretrainedConfig(dir);
  if (!config.ok()) return config.status();

  // PreTrainedTokenizerFast.__init__ (transformers 4.57) forces a top-level ByteLevel
  // pre-tokenizer's add_prefix_space to tokenizer_config's value, false when absent.
  if (config->has_tokenizer_config && json->is_object()) {
    Json* pre = json->contains("pre_tokenizer") ? &(*json)["pre_tokenizer"] : nullptr;
    if (pre != nullptr && pre->is_object() && pre->value("type", Json()) == "ByteLevel" &&
        pre->contains("add_prefix_space")) {
      (*pre)["add_prefix_space"] = config->add_prefix_space.value_or(false);
    }
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = FromJson(*json, path.string());
  if (!tokenizer.ok()) return tokenizer.status();
  if (absl::Status s = (*tokenizer)->ApplyPretrainedConfig(*config, dir); !s.ok()) return s;
  absl::StatusOr<chat::ChatTemplate> chat_template = chat::ChatTemplate::Load(dir);
  (*tokenizer)->chat_template_status_ = chat_template.status();
  if (chat_template.ok()) {
    (*tokenizer)->chat_template_ = std::make_unique<chat::ChatTemplate>(*std::move(chat_template));
  }
  return tokenizer;
}

absl::Status Tokenizer::ApplyPretrainedConfig(const PretrainedConfig& config,
                                              const std::filesystem::path& dir) {
  Tokenizer& t = *this;

  auto resolve = [&](const std::optional<std::string>& token,
                     const char* key) -> absl::StatusOr<std::optional<int64_t>> {
    if (!token.has_value()) return std::optional<int64_t>();
    std::optional<int64_t> id = t.TokenToId(*token);
    if (!id.has_value()) {
      return absl::InvalidArgumentError(Cat((dir / "tokenizer_config.json").string(), ": ", key,
                                            " \"", *token, "\" is not in the vocabulary"));
    }
    return id;
  };
  absl::StatusOr<std::optional<int64_t>> bos = resolve(config.bos_token, "bos_token");
  if (!bos.ok()) return bos.status();
  absl::StatusOr<std::optional<int64_t>> eos = resolve(config.eos_token, "eos_token");
  if (!eos.ok()) return eos.status();
  absl::StatusOr<std::optional<int64_t>> pad = resolve(config.pad_token, "pad_token");
  if (!pad.ok()) return pad.status();
  // tokenizer_config.json decides BOS and PAD when present (a null there means none).
  t.bos_id_ = config.has_tokenizer_config ? *bos : config.generation_bos_id;
  t.pad_id_ = config.has_tokenizer_config ? *pad : config.generation_pad_id;
  t.eos_ids_ = config.generation_eos_ids;
  // transformers' eos_token_id; the generation_config fallback is ours (documented).
  t.eos_token_id_ = config.has_tokenizer_config ? *eos
                    : t.eos_ids_.empty()        ? std::nullopt
                                                : std::optional<int64_t>(t.eos_ids_.front());
  if (eos->has_value() &&
      std::find(t.eos_ids_.begin(), t.eos_ids_.end(), **eos) == t.eos_ids_.end()) {
    t.eos_ids_.push_back(**eos);
  }

  // PreTrainedTokenizerFast.__init__ sets encode_special_tokens from split_special_tokens.
  t.added_.set_encode_special_tokens(config.split_special_tokens.value_or(false));

  // LlamaTokenizerFast.update_post_processor rebuilds the template from add_bos_token
  // (default true) and add_eos_token (default false).
  const std::string cls = config.tokenizer_class.value_or("");
  if (cls == "LlamaTokenizer" || cls == "LlamaTokenizerFast") {
    const bool add_bos = config.add_bos_token.value_or(true);
    const bool add_eos = config.add_eos_token.value_or(false);
    if ((add_bos && !t.bos_id_.has_value()) || (add_eos && !eos->has_value())) {
      return absl::InvalidArgumentError(
          Cat((dir / "tokenizer_config.json").string(),
              ": add_bos_token/add_eos_token is true but bos_token/eos_token is not set"));
    }
    std::vector<int64_t> prefix, suffix;
    if (add_bos) prefix.push_back(*t.bos_id_);
    if (add_eos) suffix.push_back(**eos);
    t.post_processor_ = MakeTemplate(std::move(prefix), std::move(suffix));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int64_t>> Tokenizer::Encode(std::string_view text,
                                                       bool add_special_tokens) const {
  if (!byte_level_) {
    if (std::optional<size_t> bad = FindInvalidUtf8(text)) {
      return absl::InvalidArgumentError(
          Cat("Encode: input is not valid UTF-8 at byte offset ", *bad,
              " (only byte-level tokenizers accept arbitrary bytes)"));
    }
  }
  absl::StatusOr<std::vector<Piece>> pieces = added_.ExtractAndNormalize(text, normalizer_.get());
  if (!pieces.ok()) return pieces.status();
  if (pre_tokenizer_ != nullptr) {
    if (absl::Status s = pre_tokenizer_->PreTokenize(*pieces); !s.ok()) return s;
  }
  std::vector<int64_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const Piece& piece : *pieces) {
    if (piece.token_id.has_value()) {
      ids.push_back(*piece.token_id);
    } else if (absl::Status s = model_->Tokenize(piece.text, ids); !s.ok()) {
      return s;
    }
  }
  if (post_processor_ != nullptr) post_processor_->Process(ids, add_special_tokens);
  return ids;
}

absl::StatusOr<std::string> Tokenizer::Decode(std::span<const int64_t> ids,
                                              bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (const int64_t id : ids) {
    if (id < 0 || id > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          Cat("Decode: id ", id, " is outside [0, 2^32) (tokenizers takes u32 ids)"));
    }
    const std::string* token = nullptr;
    if (const AddedToken* added = added_.FindById(id)) {
      token = &added->content;
    } else {
      token = model_->IdToToken(id);
    }
    // tokenizers' decode filter_maps ids to tokens: an id without one is dropped.
    if (token == nullptr) continue;
    if (skip_special_tokens && added_.IsSpecialContent(*token)) continue;
    tokens.push_back(*token);
  }
  if (decoder_ == nullptr) return absl::StrJoin(tokens, " ");
  if (absl::Status s = decoder_->DecodeChain(tokens); !s.ok()) return s;
  return absl::StrJoin(tokens, "");
}

std::optional<int64_t> Tokenizer::TokenToId(std::string_view token) const {
  if (std::optional<int64_t> id = added_.FindByContent(token)) return id;
  return model_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int64_t id) const {
  if (const AddedToken* added = added_.FindById(id)) return added->content;
  if (const std::string* token = model_->IdToToken(id)) return *token;
  return std::nullopt;
}

}  // namespace rlhf::tokenizer
