// Unit tests of the pipeline parts against behaviour documented by tokenizers' own tests
// (normalizer.rs split tests, byte_level.rs, bpe/word.rs, added_vocabulary.rs) and Rust's
// UTF-8 rules.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/tokenizer/added_vocabulary.h"
#include "common/tokenizer/byte_level.h"
#include "common/tokenizer/normalizer.h"
#include "common/tokenizer/pattern.h"
#include "common/tokenizer/tokenizer.h"
#include "common/tokenizer/utf8.h"
#include "tests/unit/tokenizer/test_util.h"

namespace rlhf::tokenizer {
namespace {

using ::rlhf::tokenizer::testing::kFixtures;
using ::rlhf::tokenizer::testing::ReadJson;
using ::rlhf::tokenizer::testing::TinyTokenizerJson;
using ::testing::ElementsAre;

std::vector<std::string> Split(std::string_view text, const Pattern& pattern,
                               SplitBehavior behavior, bool invert = false) {
  auto spans = SplitByPattern(text, pattern, behavior, invert);
  EXPECT_TRUE(spans.ok()) << spans.status();
  std::vector<std::string> out;
  for (const Span& s : *spans) out.emplace_back(text.substr(s.start, s.end - s.start));
  return out;
}

// tokenizers/src/tokenizer/normalizer.rs tests (split with each behavior).
TEST(Pattern, SplitBehaviors) {
  const Pattern dash = Pattern::Literal("-");
  const std::string text = "The-final--countdown";
  EXPECT_THAT(Split(text, dash, SplitBehavior::kRemoved), ElementsAre("The", "final", "countdown"));
  EXPECT_THAT(Split(text, dash, SplitBehavior::kIsolated),
              ElementsAre("The", "-", "final", "-", "-", "countdown"));
  EXPECT_THAT(Split(text, dash, SplitBehavior::kMergedWithPrevious),
              ElementsAre("The-", "final-", "-", "countdown"));
  EXPECT_THAT(Split(text, dash, SplitBehavior::kMergedWithNext),
              ElementsAre("The", "-final", "-", "-countdown"));
  EXPECT_THAT(Split(text, dash, SplitBehavior::kContiguous),
              ElementsAre("The", "-", "final", "--", "countdown"));
  EXPECT_THAT(Split(text, dash, SplitBehavior::kRemoved, /*invert=*/true),
              ElementsAre("-", "-", "-"));
  EXPECT_TRUE(Split("", dash, SplitBehavior::kIsolated).empty());
}

TEST(Pattern, RegexUsesUnicodeClassesAndLookahead) {
  auto gpt2 = Pattern::Regex(kGpt2Pattern, "test");
  ASSERT_TRUE(gpt2.ok()) << gpt2.status();
  EXPECT_THAT(Split("Hello  world's 12 ünï\u3000x", *gpt2, SplitBehavior::kIsolated),
              ElementsAre("Hello", " ", " world", "'s", " 12", " ünï", "\u3000", "x"));
  auto empty_matches = Pattern::Regex("x*", "test");
  ASSERT_TRUE(empty_matches.ok());
  auto found = empty_matches->FindAll("axxb");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->size(), 3u);  // "" at 0, "xx", "" at 4 (the one at 3 touches "xx")
  EXPECT_FALSE(Pattern::Regex("(?<=", "field").ok());
}

TEST(Utf8, LossyMatchesRust) {
  EXPECT_EQ(Utf8Lossy("ok"), "ok");
  EXPECT_EQ(Utf8Lossy("\xE2\x82"
                      "A"),
            "\uFFFD"
            "A");                                              // truncated 3-byte sequence
  EXPECT_EQ(Utf8Lossy("\xF0\x9F\x98"), "\uFFFD");              // truncated at the end
  EXPECT_EQ(Utf8Lossy("\xC0\x80"), "\uFFFD\uFFFD");            // overlong lead byte
  EXPECT_EQ(Utf8Lossy("\xED\xA0\x80"), "\uFFFD\uFFFD\uFFFD");  // surrogate
  EXPECT_EQ(Utf8Lossy("\xF4\x90\x80\x80"), "\uFFFD\uFFFD\uFFFD\uFFFD");  // > U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("abc\xFF"), 3u);
  EXPECT_EQ(FindInvalidUtf8("\u00e9\U0001F600"), std::nullopt);
}

TEST(ByteLevel, Gpt2ByteMap) {
  EXPECT_EQ(BytesToByteLevel(" \n\t!"), "\u0120\u010A\u0109!");
  EXPECT_EQ(BytesToByteLevel("\xE4\xB8\xAD"), "\u00E4\u00B8\u0143");
  for (int b = 0; b < 256; ++b) {
    const std::string mapped = BytesToByteLevel(std::string(1, static_cast<char>(b)));
    Utf8Step step = DecodeUtf8(mapped, 0);
    ASSERT_TRUE(step.valid);
    EXPECT_EQ(ByteLevelCharToByte(step.codepoint), b);
  }
  EXPECT_EQ(ByteLevelCharToByte(U'\u00AD'), std::nullopt);  // not in the map
}

TEST(Bpe, MergesByRankAndBothMergeFormats) {
  auto tok = Tokenizer::FromString(TinyTokenizerJson().dump());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_THAT(*(*tok)->Encode("abc"), ElementsAre(4));
  EXPECT_THAT(*(*tok)->Encode("abcab"), ElementsAre(4, 3));
  EXPECT_THAT(*(*tok)->Encode("azb"), ElementsAre(0, 5, 1));  // unknown char -> <unk>

  nlohmann::json fused = TinyTokenizerJson();
  fused["model"]["fuse_unk"] = true;
  EXPECT_THAT(*(*Tokenizer::FromString(fused.dump()))->Encode("azzb"), ElementsAre(0, 5, 1));
  fused["model"]["fuse_unk"] = false;
  EXPECT_THAT(*(*Tokenizer::FromString(fused.dump()))->Encode("azzb"), ElementsAre(0, 5, 5, 1));

  // The fixtures' merges written the other way round give identical ids.
  for (const char* name : {"gpt2", "llama3"}) {
    nlohmann::json json = ReadJson(kFixtures / name / "tokenizer.json");
    nlohmann::json converted = nlohmann::json::array();
    for (const auto& merge : json["model"]["merges"]) {
      if (merge.is_string()) {
        const std::string m = merge.get<std::string>();
        const size_t space = m.find(' ');
        converted.push_back({m.substr(0, space), m.substr(space + 1)});
      } else {
        converted.push_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
      }
    }
    auto original = Tokenizer::FromString(json.dump());
    json["model"]["merges"] = converted;
    auto other = Tokenizer::FromString(json.dump());
    ASSERT_TRUE(original.ok() && other.ok());
    const std::string text = "The quick brown fox, 12345 \u00fcber \u4e2d\u6587!";
    EXPECT_EQ(*(*original)->Encode(text), *(*other)->Encode(text)) << name;
  }
}

// added_vocabulary.rs test_encode_special_tokens (tokenizers 0.22.1): with
// encode_special_tokens, special tokens stay text and non-special ones still split.
TEST(AddedVocabulary, EncodeSpecialTokens) {
  auto lowercase = ParseNormalizer(nlohmann::json{{"type", "Lowercase"}}, "normalizer");
  ASSERT_TRUE(lowercase.ok()) << lowercase.status();
  const nlohmann::json tokens = nlohmann::json::parse(R"([
    {"id": 0, "content": "<mask>", "lstrip": true, "rstrip": true, "single_word": true,
     "normalized": false, "special": true},
    {"id": 1, "content": "ask>", "normalized": true, "special": false},
    {"id": 2, "content": "<pad>", "normalized": false, "special": true}])");
  auto vocab = AddedVocabulary::FromJson(tokens, "added_tokens", lowercase->get());
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  using Split = std::vector<std::pair<std::string, std::optional<int64_t>>>;
  auto split = [&](std::string_view text) {
    auto pieces = vocab->ExtractAndNormalize(text, lowercase->get());
    EXPECT_TRUE(pieces.ok()) << pieces.status();
    Split out;
    for (const Piece& piece : *pieces) out.emplace_back(piece.text, piece.token_id);
    return out;
  };
  const std::string text = "Hi <mask> there\t<mask>\t<mask>\u2000 <pad> <mask><pad><pad>";
  EXPECT_FALSE(vocab->encode_special_tokens());
  vocab->set_encode_special_tokens(true);
  EXPECT_EQ(split(text), (Split{{"hi <m", std::nullopt},
                                {"ask>", 1},
                                {" there\t<m", std::nullopt},
                                {"ask>", 1},
                                {"\t<m", std::nullopt},
                                {"ask>", 1},
                                {"\u2000 <pad> <m", std::nullopt},
                                {"ask>", 1},
                                {"<pad><pad>", std::nullopt}}));
  vocab->set_encode_special_tokens(false);
  EXPECT_EQ(split(text), (Split{{"hi", std::nullopt},
                                {" <mask> ", 0},
                                {"there", std::nullopt},
                                {"\t<mask>\t", 0},
                                {"<mask>\u2000 ", 0},
                                {"<pad>", 2},
                                {" <mask>", 0},
                                {"<pad>", 2},
                                {"<pad>", 2}}));
}

TEST(Accessors, TokenIdLookups) {
  auto tok = Tokenizer::FromDirectory(kFixtures / "llama3");
  ASSERT_TRUE(tok.ok()) << tok.status();
  const int64_t bot = *(*tok)->TokenToId("<|begin_of_text|>");
  EXPECT_EQ((*tok)->bos_id(), bot);
  EXPECT_EQ((*tok)->IdToToken(bot), "<|begin_of_text|>");
  EXPECT_EQ((*tok)->IdToToken(0), "!");
  EXPECT_EQ((*tok)->TokenToId("\u0120"), 220);  // byte-level space, as in GPT-2
  EXPECT_EQ((*tok)->TokenToId("no such token"), std::nullopt);
  EXPECT_EQ((*tok)->IdToToken(-5), std::nullopt);
  EXPECT_EQ((*tok)->IdToToken((*tok)->vocab_size()), std::nullopt);
  EXPECT_LE((*tok)->vocab_size(), 512);
}

}  // namespace
}  // namespace rlhf::tokenizer
