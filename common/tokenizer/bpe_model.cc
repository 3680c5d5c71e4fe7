#include "common/tokenizer/bpe_model.h"

#include <cstdio>
#include <limits>
#include <queue>

#include "absl/strings/str_split.h"
#include "common/tokenizer/cat.h"
#include "common/tokenizer/utf8.h"

namespace rlhf::tokenizer {
namespace {

absl::Status NotSupported(std::string_view path, std::string_view what) {
  return absl::UnimplementedError(Cat(path, ": ", what, " is not supported"));
}

// model.merges holds "left right" strings (files before tokenizers 0.20) or
// ["left", "right"] pairs.
absl::StatusOr<std::pair<std::string, std::string>> ParseMerge(const Json& merge,
                                                               std::string_view path) {
  if (merge.is_string()) {
    std::vector<std::string> parts = absl::StrSplit(merge.get<std::string>(), ' ');
    if (parts.size() == 2) return std::make_pair(parts[0], parts[1]);
  } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() &&
             merge[1].is_string()) {
    return std::make_pair(merge[0].get<std::string>(), merge[1].get<std::string>());
  }
  return absl::InvalidArgumentError(Cat(path, R"(: expected "left right" or ["left", "right"])"));
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::FromJson(const Json& json,
                                                             std::string_view path) {
  std::unique_ptr<BpeModel> model(new BpeModel());
  for (std::string_view key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    absl::StatusOr<std::optional<std::string>> affix = GetOptionalString(json, key, path);
    if (!affix.ok()) return affix.status();
    if (affix->has_value() && !(*affix)->empty()) {
      return NotSupported(JsonPath(path, key), "a non-empty value");
    }
  }
  if (const Json* dropout = FindMember(json, "dropout");
      dropout != nullptr && !dropout->is_null() &&
      !(dropout->is_number() && dropout->get<double>() == 0.0)) {
    return NotSupported(JsonPath(path, "dropout"), "BPE dropout (non-deterministic encoding)");
  }
  absl::StatusOr<std::optional<std::string>> unk = GetOptionalString(json, "unk_token", path);
  if (!unk.ok()) return unk.status();
  model->unk_token_ = *std::move(unk);
  absl::StatusOr<bool> flag = GetBool(json, "fuse_unk", path, false);
  if (!flag.ok()) return flag.status();
  model->fuse_unk_ = *flag;
  if (flag = GetBool(json, "byte_fallback", path, false); !flag.ok()) return flag.status();
  model->byte_fallback_ = *flag;
  if (flag = GetBool(json, "ignore_merges", path, false); !flag.ok()) return flag.status();
  model->ignore_merges_ = *flag;

  const std::string vocab_path = JsonPath(path, "vocab");
  const Json* vocab = FindMember(json, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    return absl::InvalidArgumentError(Cat(vocab_path, ": expected an object"));
  }
  model->vocab_.reserve(vocab->size());
  for (const auto& [token, id_json] : vocab->items()) {
    // tokenizers stores ids as u32.
    if (!id_json.is_number_integer() || id_json.get<int64_t>() < 0 ||
        id_json.get<int64_t>() > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(Cat(
          vocab_path, "[\"", token, "\"]: expected an id in [0, 2^32), got ", id_json.type_name()));
    }
    const int64_t id = id_json.get<int64_t>();
    model->vocab_[token] = id;
    model->vocab_r_[id] = token;
    model->max_id_ = std::max(model->max_id_, id);
  }

  const std::string merges_path = JsonPath(path, "merges");
  const Json* merges = FindMember(json, "merges");
  if (merges == nullptr || !merges->is_array()) {
    return absl::InvalidArgumentError(Cat(merges_path, ": expected an array"));
  }
  if (merges->size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(Cat(merges_path, ": too many merges"));
  }
  model->merges_.reserve(merges->size());
  int32_t rank = 0;
  for (size_t i = 0; i < merges->size(); ++i) {
    const Json& merge = (*merges)[i];
    if (merge.is_string() && merge.get<std::string>().rfind("#version", 0) == 0) continue;
    const std::string merge_path = JsonPath(merges_path, i);
    absl::StatusOr<std::pair<std::string, std::string>> pair = ParseMerge(merge, merge_path);
    if (!pair.ok()) return pair.status();
    int64_t ids[3];
    const std::string merged = pair->first + pair->second;
    const std::string* parts[3] = {&pair->first, &pair->second, &merged};
    for (int k = 0; k < 3; ++k) {
      auto it = model->vocab_.find(*parts[k]);
      if (it == model->vocab_.end()) {
        return absl::InvalidArgumentError(
            Cat(merge_path, ": token \"", *parts[k], "\" is not in ", vocab_path));
      }
      ids[k] = it->second;
    }
    // A later duplicate overwrites an earlier one, as collecting into a HashMap does.
    model->merges_[{ids[0], ids[1]}] = MergeValue{rank++, ids[2]};
  }

  model->byte_ids_.resize(256);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    model->byte_ids_[b] = model->TokenToId(name);
  }
  return model;
}

std::optional<int64_t> BpeModel::TokenToId(std::string_view token) const {
  auto it = vocab_.find(AbslView(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::IdToToken(int64_t id) const {
  auto it = vocab_r_.find(id);
  return it == vocab_r_.end() ? nullptr : &it->second;
}

// BPE::merge_word: one symbol per character, falling back to <0xXX> byte tokens or to
// the (optionally fused) unk token for characters outside the vocabulary.
absl::Status BpeModel::BuildWord(std::string_view word, std::vector<int64_t>& symbols) const {
  std::optional<std::pair<int64_t, size_t>> unk;  // pending unk id and its byte length
  for (size_t pos = 0; pos < word.size();) {
    const size_t length = DecodeUtf8(word, pos).length;
    const std::string_view piece = word.substr(pos, length);
    pos += length;
    if (auto id = TokenToId(piece)) {
      if (unk.has_value()) symbols.push_back(unk->first);
      unk.reset();
      symbols.push_back(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all_bytes = true;
      for (char c : piece) all_bytes = all_bytes && byte_ids_[static_cast<uint8_t>(c)];
      if (all_bytes) {
        // tokenizers leaves a pending unk in place here; mirrored for identical ids.
        for (char c : piece) symbols.push_back(*byte_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (!unk_token_.has_value()) continue;  // no unk token: the character is dropped
    std::optional<int64_t> unk_id = TokenToId(*unk_token_);
    if (!unk_id.has_value()) {
      return absl::InvalidArgumentError(
          Cat("model.unk_token \"", *unk_token_, "\" is not in model.vocab"));
    }
    if (unk.has_value() && fuse_unk_) {
      unk->second += length;
    } else {
      if (unk.has_value()) symbols.push_back(unk->first);
      unk = std::make_pair(*unk_id, length);
    }
  }
  if (unk.has_value()) symbols.push_back(unk->first);
  return absl::OkStatus();
}

// Word::merge_all: repeatedly merge the adjacent pair of lowest rank (leftmost on ties);
// stale queue entries are skipped by re-checking the pair.
void BpeModel::MergeAll(std::vector<int64_t>& ids) const {
  struct Symbol {
    int64_t id;
    int64_t prev;
    int64_t next;
    bool removed;
  };
  struct Candidate {
    int32_t rank;
    int64_t pos;
    int64_t new_id;
    bool operator<(const Candidate& o) const {  // priority_queue pops the largest
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const int64_t n = static_cast<int64_t>(ids.size());
  std::vector<Symbol> symbols(ids.size());
  for (int64_t i = 0; i < n; ++i) symbols[i] = {ids[i], i - 1, i + 1 < n ? i + 1 : -1, false};
  std::vector<Candidate> initial;
  initial.reserve(ids.size());
  for (int64_t i = 0; i + 1 < n; ++i) {
    auto it = merges_.find(PairKey{ids[i], ids[i + 1]});
    if (it != merges_.end()) initial.push_back({it->second.rank, i, it->second.new_id});
  }
  std::priority_queue<Candidate> queue(std::less<Candidate>(), std::move(initial));
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (left.removed || left.next < 0) continue;
    const int64_t right_pos = left.next;
    auto it = merges_.find(PairKey{left.id, symbols[right_pos].id});
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale entry
    left.id = top.new_id;
    left.next = symbols[right_pos].next;
    symbols[right_pos].removed = true;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) {
      auto m = merges_.find(PairKey{symbols[left.prev].id, left.id});
      if (m != merges_.end()) queue.push({m->second.rank, left.prev, m->second.new_id});
    }
    if (left.next >= 0) {
      auto m = merges_.find(PairKey{left.id, symbols[left.next].id});
      if (m != merges_.end()) queue.push({m->second.rank, top.pos, m->second.new_id});
    }
  }
  ids.clear();
  for (const Symbol& s : symbols) {
    if (!s.removed) ids.push_back(s.id);
  }
}

absl::Status BpeModel::Tokenize(std::string_view word, std::vector<int64_t>& ids) const {
  if (word.empty()) return absl::OkStatus();
  if (ignore_merges_) {
    if (auto id = TokenToId(word)) {
      ids.push_back(*id);
      return absl::OkStatus();
    }
  }
  const bool cacheable = word.size() < kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (auto it = cache_.find(AbslView(word)); it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return absl::OkStatus();
    }
  }
  std::vector<int64_t> symbols;
  symbols.reserve(word.size());
  if (absl::Status s = BuildWord(word, symbols); !s.ok()) return s;
  MergeAll(symbols);
  ids.insert(ids.end(), symbols.begin(), symbols.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::move(symbols));
  }
  return absl::OkStatus();
}

}  // namespace rlhf::tokenizer
