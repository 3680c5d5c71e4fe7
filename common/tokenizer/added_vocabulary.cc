#include "common/tokenizer/added_vocabulary.h"

#include <algorithm>
#include <limits>

#include "absl/status/status.h"
#include "common/tokenizer/cat.h"
#include "common/tokenizer/utf8.h"

namespace rlhf::tokenizer {
namespace {

// The character that ends `text`, or nullopt (empty or ill-formed).
std::optional<char32_t> LastChar(std::string_view text) {
  Utf8Step step = DecodeUtf8Before(text, text.size());
  if (!step.valid) return std::nullopt;
  return step.codepoint;
}

std::optional<char32_t> FirstChar(std::string_view text) {
  if (text.empty()) return std::nullopt;
  Utf8Step step = DecodeUtf8(text, 0);
  if (!step.valid) return std::nullopt;
  return step.codepoint;
}

// Start of the whitespace run that ends `text` (regex \s*$).
size_t TrailingSpaceStart(std::string_view text) {
  size_t end = text.size();
  for (Utf8Step step = DecodeUtf8Before(text, end); step.valid && IsWhitespace(step.codepoint);
       step = DecodeUtf8Before(text, end)) {
    end -= step.length;
  }
  return end;
}

// Length of the whitespace run that starts `text` (regex ^\s*).
size_t LeadingSpaceLength(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    Utf8Step step = DecodeUtf8(text, pos);
    if (!step.valid || !IsWhitespace(step.codepoint)) break;
    pos += step.length;
  }
  return pos;
}

}  // namespace

void AddedVocabulary::Trie::Insert(std::string_view key, size_t token_index) {
  int32_t node = 0;
  for (char c : key) {
    const uint64_t edge = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(c);
    auto it = edges_.find(edge);
    if (it == edges_.end()) {
      it = edges_.emplace(edge, static_cast<int32_t>(terminal_.size())).first;
      terminal_.push_back(-1);
    }
    node = it->second;
  }
  terminal_[node] = static_cast<int64_t>(token_index);
}

std::optional<std::pair<size_t, size_t>> AddedVocabulary::Trie::Longest(std::string_view text,
                                                                        size_t pos) const {
  std::optional<std::pair<size_t, size_t>> best;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    auto it = edges_.find((static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(text[i]));
    if (it == edges_.end()) break;
    node = it->second;
    if (terminal_[node] >= 0) best = {i + 1 - pos, static_cast<size_t>(terminal_[node])};
  }
  return best;
}

absl::StatusOr<AddedVocabulary> AddedVocabulary::FromJson(const Json& json, std::string_view path,
                                                          const Normalizer* normalizer) {
  AddedVocabulary vocab;
  if (json.is_null()) return vocab;
  if (!json.is_array()) {
    return absl::InvalidArgumentError(Cat(path, ": expected an array"));
  }
  for (size_t i = 0; i < json.size(); ++i) {
    const Json& entry = json[i];
    const std::string entry_path = JsonPath(path, i);
    if (!entry.is_object()) {
      return absl::InvalidArgumentError(Cat(entry_path, ": expected an object"));
    }
    AddedToken token;
    absl::StatusOr<int64_t> id = GetInt(entry, "id", entry_path, -1);
    if (!id.ok()) return id.status();
    if (*id < 0 || *id > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          Cat(JsonPath(entry_path, "id"), ": expected an id in [0, 2^32)"));
    }
    token.id = *id;
    absl::StatusOr<std::string> content = GetString(entry, "content", entry_path);
    if (!content.ok()) return content.status();
    token.content = *std::move(content);
    struct Flag {
      const char* key;
      bool* value;
      bool default_value;
    };
    for (const Flag& flag :
         {Flag{"single_word", &token.single_word, false}, Flag{"lstrip", &token.lstrip, false},
          Flag{"rstrip", &token.rstrip, false}, Flag{"normalized", &token.normalized, true},
          Flag{"special", &token.special, false}}) {
      absl::StatusOr<bool> value = GetBool(entry, flag.key, entry_path, flag.default_value);
      if (!value.ok()) return value.status();
      *flag.value = *value;
    }
    if (token.content.empty()) continue;  // tokenizers ignores empty added tokens
    const size_t index = vocab.tokens_.size();
    vocab.max_id_ = std::max(vocab.max_id_, token.id);
    vocab.by_id_[token.id] = index;
    vocab.by_content_[token.content] = index;
    if (token.special) vocab.special_contents_.insert(token.content);
    vocab.tokens_.push_back(std::move(token));
  }
  // tokenizers matches special tokens first, then the others; a later pattern with the
  // same bytes replaces an earlier one.
  for (bool special : {true, false}) {
    for (size_t index = 0; index < vocab.tokens_.size(); ++index) {
      const AddedToken& token = vocab.tokens_[index];
      if (token.special != special) continue;
      if (!token.normalized) {
        vocab.raw_trie_.Insert(token.content, index);
        continue;
      }
      std::string pattern = token.content;
      if (normalizer != nullptr) {
        absl::StatusOr<std::string> normalized = normalizer->Normalize(token.content);
        if (!normalized.ok()) return normalized.status();
        pattern = *std::move(normalized);
      }
      if (!pattern.empty()) vocab.normalized_trie_.Insert(pattern, index);
    }
  }
  return vocab;
}

std::vector<Piece> AddedVocabulary::Split(const Piece& piece, const Trie& trie) const {
  const std::string_view text = piece.text;
  std::vector<Piece> out;
  auto emit = [&](size_t start, size_t stop, std::optional<int64_t> id) {
    if (stop <= start && !id.has_value()) return;
    out.push_back(Piece{std::string(text.substr(start, stop - start)),
                        piece.at_original_start && start == 0, id});
  };
  size_t start_offset = 0;
  for (size_t pos = 0; pos < text.size();) {
    auto match = trie.empty() ? std::nullopt : trie.Longest(text, pos);
    if (!match.has_value()) {
      ++pos;
      continue;
    }
    size_t start = pos, stop = pos + match->first;
    pos = stop;  // the automaton resumes after every match, kept or not
    const AddedToken& token = tokens_[match->second];
    // find_matches checks specialness by content (special_tokens_set), as here.
    if (encode_special_tokens_ && IsSpecialContent(token.content)) continue;
    if (token.single_word) {
      auto before = LastChar(text.substr(0, start));
      auto after = FirstChar(text.substr(stop));
      if ((before && IsWordChar(*before)) || (after && IsWordChar(*after))) continue;
    }
    if (token.lstrip) {
      start = std::max(TrailingSpaceStart(text.substr(0, start)), start_offset);
    }
    if (token.rstrip) stop += LeadingSpaceLength(text.substr(stop));
    if (start_offset < start) emit(start_offset, start, std::nullopt);
    emit(start, stop, token.id);
    start_offset = stop;
  }
  if (start_offset < text.size()) emit(start_offset, text.size(), std::nullopt);
  return out;
}

absl::StatusOr<std::vector<Piece>> AddedVocabulary::ExtractAndNormalize(
    std::string_view text, const Normalizer* normalizer) const {
  std::vector<Piece> out;
  for (Piece& raw : Split(Piece{std::string(text), true, std::nullopt}, raw_trie_)) {
    if (raw.token_id.has_value()) {
      out.push_back(std::move(raw));
      continue;
    }
    if (normalizer != nullptr) {
      absl::StatusOr<std::string> normalized = normalizer->Normalize(raw.text);
      if (!normalized.ok()) return normalized.status();
      raw.text = *std::move(normalized);
    }
    for (Piece& piece : Split(raw, normalized_trie_)) {
      if (!piece.text.empty() || piece.token_id.has_value()) out.push_back(std::move(piece));
    }
  }
  return out;
}

const AddedToken* AddedVocabulary::FindById(int64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int64_t> AddedVocabulary::FindByContent(std::string_view content) const {
  auto it = by_content_.find(AbslView(content));
  if (it == by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

}  // namespace rlhf::tokenizer
