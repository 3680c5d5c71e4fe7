#pragma once

// Added tokens (tokenizers/src/tokenizer/added_vocabulary.rs): found in the text before
// the normalizer and the model run, leftmost-longest, and never split or BPE'd.
// Tokens with normalized=false (all special tokens in practice) match the raw text;
// normalized ones match the normalized text of what is left.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/tokenizer/cat.h"
#include "common/tokenizer/json_config.h"
#include "common/tokenizer/normalizer.h"
#include "common/tokenizer/pre_tokenizer.h"

namespace rlhf::tokenizer {

struct AddedToken {
  int64_t id = 0;
  std::string content;
  bool single_word = false;  // only match when not inside a word (\w on either side)
  bool lstrip = false;       // also take the whitespace on its left
  bool rstrip = false;       // also take the whitespace on its right
  bool normalized = true;    // match against the normalized text
  bool special = false;      // skipped by Decode(skip_special_tokens=true); see also
                             // set_encode_special_tokens
};

// Immutable once set up (FromJson, then set_encode_special_tokens); safe to use from
// several threads at once after that.
class AddedVocabulary {
 public:
  AddedVocabulary() = default;

  // Parses the "added_tokens" array at `path`; normalized tokens are matched in their
  // normalized form, as tokenizers' refresh_added_tokens does.
  static absl::StatusOr<AddedVocabulary> FromJson(const Json& json, std::string_view path,
                                                  const Normalizer* normalizer);

  // AddedVocabulary::extract_and_normalize: splits on raw-text tokens, normalizes the
  // rest, then splits that on normalized tokens. Empty pieces are dropped.
  absl::StatusOr<std::vector<Piece>> ExtractAndNormalize(std::string_view text,
                                                         const Normalizer* normalizer) const;

  const AddedToken* FindById(int64_t id) const;
  std::optional<int64_t> FindByContent(std::string_view content) const;
  // Specialness goes by content, as in tokenizers' special_tokens_set.
  bool IsSpecialContent(std::string_view content) const {
    return special_contents_.contains(AbslView(content));
  }
  int64_t max_id() const { return max_id_; }

  // tokenizers' AddedVocabulary::set_encode_special_tokens (0.22), which transformers sets
  // from tokenizer_config's split_special_tokens: a match of a special token is dropped and
  // its text left to the model, while non-special added tokens still split. The automaton
  // still resumes after the dropped match, so no other added token matches inside it.
  void set_encode_special_tokens(bool value) { encode_special_tokens_ = value; }
  bool encode_special_tokens() const { return encode_special_tokens_; }

 private:
  // Byte trie over token contents; Longest() gives the leftmost-longest match semantics
  // of the Aho-Corasick automaton tokenizers builds (MatchKind::LeftmostLongest).
  class Trie {
   public:
    void Insert(std::string_view key, size_t token_index);
    bool empty() const { return terminal_.size() <= 1; }
    // Length and token of the longest key that starts at text[pos], if any.
    std::optional<std::pair<size_t, size_t>> Longest(std::string_view text, size_t pos) const;

   private:
    absl::flat_hash_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child
    std::vector<int64_t> terminal_ = {-1};          // node -> token index or -1
  };

  // find_matches + split_with_indices for one piece.
  std::vector<Piece> Split(const Piece& piece, const Trie& trie) const;

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int64_t, size_t> by_id_;
  absl::flat_hash_map<std::string, size_t> by_content_;
  absl::flat_hash_set<std::string> special_contents_;
  Trie raw_trie_;
  Trie normalized_trie_;
  int64_t max_id_ = -1;
  bool encode_special_tokens_ = false;
};

}  // namespace rlhf::tokenizer
