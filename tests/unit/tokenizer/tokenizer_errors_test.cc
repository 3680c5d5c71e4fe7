// Bad input: malformed or unsupported tokenizer.json, bad ids, bad UTF-8, bad checkpoint
// directories, and inputs that could make a naive tokenizer slow.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/test_util.h"

namespace rlhf::tokenizer {
namespace {

using ::rlhf::tokenizer::testing::kFixtures;
using ::rlhf::tokenizer::testing::ReadJson;
using ::rlhf::tokenizer::testing::ReadText;
using ::rlhf::tokenizer::testing::TempDir;
using ::rlhf::tokenizer::testing::TinyTokenizerJson;
using ::rlhf::tokenizer::testing::WriteText;
using ::testing::HasSubstr;

absl::Status LoadStatus(const nlohmann::json& json) {
  return Tokenizer::FromString(json.dump()).status();
}

std::unique_ptr<Tokenizer> LoadFixture(const std::string& name) {
  auto tok = Tokenizer::FromDirectory(kFixtures / name);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

TEST(TokenizerErrors, MalformedJson) {
  absl::Status s = Tokenizer::FromString("{\"model\": {\"type\": \"BPE\",").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("malformed JSON"));
  EXPECT_THAT(Tokenizer::FromString("").status().message(), HasSubstr("malformed JSON"));
  EXPECT_THAT(Tokenizer::FromString("[1, 2]").status().message(),
              HasSubstr("expected a JSON object"));
}

TEST(TokenizerErrors, MissingModel) {
  nlohmann::json json = TinyTokenizerJson();
  json.erase("model");
  absl::Status s = LoadStatus(json);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("model: missing"));

  json = TinyTokenizerJson();
  json["model"].erase("vocab");
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("model.vocab: expected an object"));
  json = TinyTokenizerJson();
  json["model"]["merges"] = "a b";
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("model.merges: expected an array"));
}

TEST(TokenizerErrors, MergesReferencingUnknownTokens) {
  nlohmann::json json = TinyTokenizerJson();
  json["model"]["merges"] = {"a b", "a z"};
  absl::Status s = LoadStatus(json);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("model.merges[1]: token \"z\" is not in model.vocab"));

  json["model"]["merges"] = {"b c"};  // "bc" itself is missing
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("token \"bc\" is not in model.vocab"));

  json["model"]["merges"] = {"abc"};
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("model.merges[0]: expected \"left right\""));
  json["model"]["merges"] = nlohmann::json::parse(R"([["a", "b", "c"]])");
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("model.merges[0]"));
}

TEST(TokenizerErrors, BadVocabIds) {
  nlohmann::json json = TinyTokenizerJson();
  json["model"]["vocab"]["a"] = -4;
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("model.vocab[\"a\"]: expected an id"));
  json["model"]["vocab"]["a"] = "zero";
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("model.vocab[\"a\"]"));
}

TEST(TokenizerErrors, UnsupportedComponentsNameTheirPath) {
  nlohmann::json json = TinyTokenizerJson();
  json["model"]["type"] = "WordPiece";
  absl::Status s = LoadStatus(json);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("model.type: \"WordPiece\" is not supported"));
  json["model"]["type"] = "Unigram";
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("\"Unigram\" is not supported"));

  json = TinyTokenizerJson();
  json["normalizer"] = nlohmann::json::parse(
      R"({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "BertNormalizer"}]})");
  s = LoadStatus(json);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(),
              HasSubstr("normalizer.normalizers[1]: normalizer type \"BertNormalizer\""));

  json = TinyTokenizerJson();
  json["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("pre_tokenizer: pre-tokenizer type"));

  json = TinyTokenizerJson();
  json["post_processor"] = nlohmann::json::parse(
      R"({"type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 0]})");
  s = LoadStatus(json);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(s.message(), HasSubstr("post_processor: post-processor type \"RobertaProcessing\""));
  json["post_processor"] = {{"type", "BertProcessing"}};
  EXPECT_EQ(LoadStatus(json).code(), absl::StatusCode::kUnimplemented);

  json = TinyTokenizerJson();
  json["decoder"] = {{"type", "WordPiece"}};
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("decoder: decoder type \"WordPiece\""));

  json = TinyTokenizerJson();
  json["model"]["continuing_subword_prefix"] = "##";
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("model.continuing_subword_prefix"));
  json = TinyTokenizerJson();
  json["model"]["dropout"] = 0.1;
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("model.dropout"));
}

TEST(TokenizerErrors, BadRegexAndFields) {
  nlohmann::json json = TinyTokenizerJson();
  json["pre_tokenizer"] = nlohmann::json::parse(
      R"({"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"})");
  absl::Status s = LoadStatus(json);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("pre_tokenizer.pattern: invalid regex"));

  json["pre_tokenizer"]["pattern"] = {{"Regex", "a"}};
  json["pre_tokenizer"]["behavior"] = "Sideways";
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("pre_tokenizer.behavior: unknown split"));

  json = TinyTokenizerJson();
  json["added_tokens"] = nlohmann::json::parse(R"([{"id": 9, "content": 7}])");
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("added_tokens[0].content"));

  json = TinyTokenizerJson();
  json["post_processor"] = nlohmann::json::parse(R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}}], "special_tokens": {}})");
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("special token \"<s>\" has no"));
  json["post_processor"]["special_tokens"] =
      nlohmann::json::parse(R"({"<s>": {"id": "<s>", "ids": [77], "tokens": ["<s>"]}})");
  EXPECT_THAT(LoadStatus(json).message(),
              HasSubstr("post_processor: special token id 77 is not in the vocabulary"));
}

TEST(TokenizerErrors, DeepNestingIsRejectedNotRecursedForever) {
  nlohmann::json normalizer = {{"type", "NFC"}};
  for (int i = 0; i < 200; ++i) {
    normalizer = {{"type", "Sequence"}, {"normalizers", {normalizer}}};
  }
  nlohmann::json json = TinyTokenizerJson();
  json["normalizer"] = normalizer;
  EXPECT_THAT(LoadStatus(json).message(), HasSubstr("nested too deeply"));
  std::string deep(100000, '[');
  EXPECT_FALSE(Tokenizer::FromString(deep).ok());
}

// tokenizers' decode (0.22, tokenizer/mod.rs) filter_maps ids to tokens, so ids without
// one are skipped; its ids are u32, and Python raises OverflowError outside that range.
TEST(TokenizerErrors, DecodeSkipsIdsWithoutTokenAndRejectsNonU32) {
  auto tok = LoadFixture("gpt2");
  ASSERT_NE(tok, nullptr);
  const std::string hello = *tok->Decode(*tok->Encode("Hello"));
  std::vector<int64_t> ids = *tok->Encode("Hello");
  ids.insert(ids.begin(), {tok->vocab_size(), 100000, int64_t{0xFFFFFFFF}});
  auto text = tok->Decode(ids);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, hello);
  ids = {tok->vocab_size()};
  EXPECT_EQ(*tok->Decode(ids), "");

  for (int64_t bad : {int64_t{-1}, int64_t{1} << 32, std::numeric_limits<int64_t>::min()}) {
    ids = {40, bad};
    absl::Status s = tok->Decode(ids).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("id " + std::to_string(bad) + " is outside [0, 2^32)"));
  }

  // A gap in the vocabulary: ids 4 and 6 have no token (vocab_size() is 8).
  nlohmann::json json = TinyTokenizerJson();
  json["model"]["vocab"]["abc"] = 7;
  auto gapped = Tokenizer::FromString(json.dump());
  ASSERT_TRUE(gapped.ok()) << gapped.status();
  EXPECT_EQ((*gapped)->vocab_size(), 8);
  ids = {0, 4, 1, 6, 7, 8};
  EXPECT_EQ(*(*gapped)->Decode(ids), "a b abc");  // no decoder: tokens joined by spaces
}

TEST(TokenizerErrors, UnknownTokenMissingFromVocab) {
  nlohmann::json json = TinyTokenizerJson();
  json["model"]["unk_token"] = "<missing>";
  auto tok = Tokenizer::FromString(json.dump());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_TRUE((*tok)->Encode("abc").ok());
  EXPECT_THAT((*tok)->Encode("abz").status().message(),
              HasSubstr("model.unk_token \"<missing>\" is not in model.vocab"));
}

TEST(TokenizerErrors, InvalidUtf8) {
  for (const char* name : {"llama2", "mistral"}) {
    auto tok = LoadFixture(name);
    ASSERT_NE(tok, nullptr);
    absl::Status s = tok->Encode("ok \xE4\xB8 then").status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("not valid UTF-8 at byte offset 3"));
    EXPECT_FALSE(tok->Encode("\xED\xA0\x80").ok());  // a UTF-16 surrogate
    EXPECT_FALSE(tok->Encode("\xC0\xAF").ok());      // overlong
  }
  // Byte-level tokenizers take any bytes; decoding replaces ill-formed sequences with
  // U+FFFD the way Rust's String::from_utf8_lossy does.
  for (const char* name : {"gpt2", "llama3", "qwen2"}) {
    auto tok = LoadFixture(name);
    ASSERT_NE(tok, nullptr);
    auto ids = tok->Encode("a\xFF\xFE b\xE4\xB8 \xF0\x9F\x98\x80", false);
    ASSERT_TRUE(ids.ok()) << name << ": " << ids.status();
    auto text = tok->Decode(*ids);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(*text, "a\uFFFD\uFFFD b\uFFFD \U0001F600") << name;
  }
}

TEST(TokenizerErrors, MissingFiles) {
  EXPECT_EQ(Tokenizer::FromFile("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);
  absl::Status s = Tokenizer::FromDirectory("/nonexistent").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("/nonexistent/tokenizer.json"));
}

TEST(TokenizerErrors, BadCheckpointConfigs) {
  TempDir dir("tokenizer_bad_config");
  WriteText(dir.path() / "tokenizer.json", ReadText(kFixtures / "gpt2/tokenizer.json"));
  WriteText(dir.path() / "tokenizer_config.json", "{\"bos_token\": ");
  absl::Status s = Tokenizer::FromDirectory(dir.path()).status();
  EXPECT_THAT(s.message(), HasSubstr("tokenizer_config.json: malformed JSON"));

  WriteText(dir.path() / "tokenizer_config.json", R"({"bos_token": "<nope>"})");
  s = Tokenizer::FromDirectory(dir.path()).status();
  EXPECT_THAT(s.message(), HasSubstr("bos_token \"<nope>\" is not in the vocabulary"));

  WriteText(dir.path() / "tokenizer_config.json", R"({"eos_token": 5})");
  EXPECT_THAT(Tokenizer::FromDirectory(dir.path()).status().message(),
              HasSubstr("eos_token must be a string"));

  WriteText(dir.path() / "tokenizer_config.json", R"({"eos_token": "<|endoftext|>"})");
  WriteText(dir.path() / "generation_config.json", R"({"eos_token_id": [1, "x"]})");
  EXPECT_THAT(Tokenizer::FromDirectory(dir.path()).status().message(),
              HasSubstr("generation_config.json: eos_token_id must be"));
}

TEST(TokenizerLimits, OneMegabyteOfOneCharacterIsFast) {
  std::vector<std::string> inputs = {
      std::string(1 << 20, 'a'),  std::string(1 << 20, ' '), std::string(1 << 20, '1'),
      std::string(1 << 20, '\n'), std::string(1 << 20, '!'),
  };
  std::string emoji;
  while (emoji.size() < (1 << 20)) emoji += "\U0001F600";
  inputs.push_back(emoji);
  for (const char* name : {"gpt2", "llama3", "qwen2", "llama2", "mistral", "mistral_always"}) {
    auto tok = LoadFixture(name);
    ASSERT_NE(tok, nullptr);
    const auto start = std::chrono::steady_clock::now();
    for (const std::string& text_in : inputs) {
      const std::string* input = &text_in;
      auto ids = tok->Encode(*input, false);
      ASSERT_TRUE(ids.ok()) << name << ": " << ids.status();
      EXPECT_FALSE(ids->empty());
      auto text = tok->Decode(*ids);
      ASSERT_TRUE(text.ok());
      if (std::string(name).find("mistral") == std::string::npos) {
        EXPECT_EQ(text->size(), input->size()) << name;
      }
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    // Linear work takes about a second per MiB even under ASan; quadratic work would take
    // hours.
    EXPECT_LT(seconds, 60.0) << name;
    std::printf("[ limits   ] %s: 6 x 1 MiB encoded + decoded in %.2f s\n", name, seconds);
  }
}

TEST(TokenizerThreads, ConcurrentEncodeDecodeMatchesSerial) {
  auto tok = LoadFixture("llama3");
  ASSERT_NE(tok, nullptr);
  const nlohmann::json goldens = ReadJson(kFixtures / "goldens.json");
  const auto strings = goldens["strings"].get<std::vector<std::string>>();
  const nlohmann::json& cases = goldens["tokenizers"]["llama3"]["cases"];
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = (t + round) % strings.size(), n = 0; n < strings.size();
             ++n, i = (i + 1) % strings.size()) {
          auto ids = tok->Encode(strings[i]);
          if (!ids.ok() || *ids != cases[i]["ids"].get<std::vector<int64_t>>()) ++mismatches;
          auto text = tok->Decode(*ids);
          if (!text.ok() || *text != cases[i]["decode"].get<std::string>()) ++mismatches;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace rlhf::tokenizer
