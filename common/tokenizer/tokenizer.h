#pragma once

// A Hugging Face tokenizer.json runtime for BPE checkpoints (GPT-2, Llama-2/3, Qwen2,
// Mistral families), producing the same ids as the `tokenizers` library (0.22) and, via
// FromDirectory, as transformers' AutoTokenizer.
//
// Pipeline (tokenizers/src/tokenizer/mod.rs encode_single_sequence): added tokens are
// split out first, the rest is normalized, pre-tokenized, BPE'd; then the post-processor
// adds special tokens. Decode maps ids to tokens and runs the decoder chain.
//
// Thread-safety: a loaded Tokenizer is immutable apart from an internal, mutex-guarded
// word cache; Encode and Decode may be called concurrently from any number of threads.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/chat/chat_template.h"
#include "common/tokenizer/added_vocabulary.h"
#include "common/tokenizer/bpe_model.h"
#include "common/tokenizer/decoder.h"
#include "common/tokenizer/normalizer.h"
#include "common/tokenizer/post_processor.h"
#include "common/tokenizer/pre_tokenizer.h"
#include "common/tokenizer/pretrained_config.h"

namespace rlhf::tokenizer {

class Tokenizer {
 public:
  // Loads a tokenizer.json. bos_id/eos_ids/eos_token_id/pad_id stay empty (they live in
  // the other files of a checkpoint directory).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(
      const std::filesystem::path& tokenizer_json);
  // Loads dir/tokenizer.json plus, where present, dir/tokenizer_config.json (special
  // tokens, add_bos_token/add_eos_token for Llama tokenizers, add_prefix_space,
  // split_special_tokens) and dir/generation_config.json (eos_token_id as an int or a
  // list), as transformers does.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromDirectory(const std::filesystem::path& dir);
  // Parses tokenizer.json content held in memory.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromString(std::string_view tokenizer_json);

  // Text to ids. Byte-level tokenizers accept any bytes; others need valid UTF-8. With
  // tokenizer_config's split_special_tokens true, special added tokens in `text` are
  // tokenized as ordinary text (non-special added tokens still are single ids), as
  // transformers 4.57 does by setting tokenizers' encode_special_tokens.
  absl::StatusOr<std::vector<int64_t>> Encode(std::string_view text,
                                              bool add_special_tokens = true) const;
  // Ids to text. As tokenizers 0.22's Tokenizer::decode, an id with no token (one >=
  // vocab_size(), or a gap in the ids) is skipped: models' embedding matrices are often
  // larger than their tokenizers (Qwen2: 151936 rows, 151665 tokens), so sampling can
  // yield such ids. Ids outside [0, 2^32) are InvalidArgument: tokenizers takes u32 ids,
  // and its Python binding raises OverflowError for them.
  absl::StatusOr<std::string> Decode(std::span<const int64_t> ids,
                                     bool skip_special_tokens = false) const;

  // Largest id over the vocabulary and the added tokens, plus one.
  int64_t vocab_size() const { return vocab_size_; }
  std::optional<int64_t> bos_id() const { return bos_id_; }
  // Every id that ends generation: generation_config's eos_token_id(s), then
  // tokenizer_config's eos_token if not among them.
  std::vector<int64_t> eos_ids() const { return eos_ids_; }
  // The one id to append to a completion: the id of tokenizer_config's eos_token, as
  // transformers' tokenizer.eos_token_id (what TRL 0.24's SFTTrainer and DPOTrainer
  // append). With no tokenizer_config.json (transformers would give None) it is the first
  // of generation_config's eos_token_id(s), if any; nullopt from FromFile/FromString.
  std::optional<int64_t> eos_token_id() const { return eos_token_id_; }
  // The model's chat template (dir/chat_template.jinja or tokenizer_config.json's), loaded
  // by FromDirectory. nullptr when there is none or it does not parse; then
  // chat_template_status() says why (only conversational data needs it).
  const chat::ChatTemplate* chat_template() const { return chat_template_.get(); }
  const absl::Status& chat_template_status() const { return chat_template_status_; }
  std::optional<int64_t> pad_id() const { return pad_id_; }

  // Added tokens first, then the model vocabulary (as tokenizers' token_to_id).
  std::optional<int64_t> TokenToId(std::string_view token) const;
  std::optional<std::string> IdToToken(int64_t id) const;

 private:
  Tokenizer() = default;
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(const Json& json,
                                                             std::string_view source);
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Build(const Json& json,
                                                          std::string_view source);
  absl::Status ApplyPretrainedConfig(const PretrainedConfig& config,
                                     const std::filesystem::path& dir);

  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  AddedVocabulary added_;
  bool byte_level_ = false;
  int64_t vocab_size_ = 0;
  std::optional<int64_t> bos_id_;
  std::vector<int64_t> eos_ids_;
  std::optional<int64_t> eos_token_id_;
  std::optional<int64_t> pad_id_;
  std::unique_ptr<chat::ChatTemplate> chat_template_;
  absl::Status chat_template_status_ =
      absl::NotFoundError("no chat template (not loaded from a directory)");
};

}  // namespace rlhf::tokenizer
