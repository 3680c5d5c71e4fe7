// tokenizer_config.json and generation_config.json beside tokenizer.json: which ids mean
// BOS/EOS/PAD and the options that change encoding, as transformers 4.57 reads them.

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/tokenizer/tokenizer.h"
#include "tests/unit/tokenizer/test_util.h"

namespace rlhf::tokenizer {
namespace {

using ::rlhf::tokenizer::testing::kFixtures;
using ::rlhf::tokenizer::testing::ReadText;
using ::rlhf::tokenizer::testing::TempDir;
using ::rlhf::tokenizer::testing::WriteText;
using ::testing::HasSubstr;

TEST(TokenizerConfig, SpecialTokensFromCheckpointFiles) {
  TempDir dir("tokenizer_config");
  WriteText(dir.path() / "tokenizer.json", ReadText(kFixtures / "llama2/tokenizer.json"));
  // No tokenizer_config.json: BOS/PAD come from generation_config.json.
  WriteText(dir.path() / "generation_config.json",
            R"({"bos_token_id": 1, "eos_token_id": [2, 0], "pad_token_id": 0})");
  auto tok = Tokenizer::FromDirectory(dir.path());
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->bos_id(), 1);
  EXPECT_EQ((*tok)->eos_ids(), (std::vector<int64_t>{2, 0}));
  EXPECT_EQ((*tok)->pad_id(), 0);

  // LlamaTokenizer: add_bos_token/add_eos_token rebuild the template, as transformers does.
  WriteText(dir.path() / "tokenizer_config.json",
            R"({"tokenizer_class": "LlamaTokenizer", "add_bos_token": false,
                "add_eos_token": true, "bos_token": {"content": "<s>"}, "eos_token": "</s>",
                "pad_token": "<unk>"})");
  tok = Tokenizer::FromDirectory(dir.path());
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto plain = (*tok)->Encode("hi", false);
  auto ids = (*tok)->Encode("hi");
  ASSERT_TRUE(ids.ok() && plain.ok());
  std::vector<int64_t> expected = *plain;
  expected.push_back(2);
  EXPECT_EQ(*ids, expected);
  EXPECT_EQ((*tok)->pad_id(), 0);
  EXPECT_EQ((*tok)->eos_ids(), (std::vector<int64_t>{2, 0}));
}

// eos_token_id() is transformers' tokenizer.eos_token_id; with no tokenizer_config.json
// (where transformers has None) it falls back to generation_config's first eos id.
TEST(TokenizerConfig, EosTokenId) {
  TempDir dir("tokenizer_eos_token_id");
  WriteText(dir.path() / "tokenizer.json", ReadText(kFixtures / "llama2/tokenizer.json"));
  auto load = [&] {
    auto tok = Tokenizer::FromDirectory(dir.path());
    EXPECT_TRUE(tok.ok()) << tok.status();
    return tok.ok() ? (*tok)->eos_token_id() : std::optional<int64_t>(-1);
  };
  EXPECT_EQ(load(), std::nullopt);  // neither file
  WriteText(dir.path() / "generation_config.json", R"({"eos_token_id": [2, 0]})");
  EXPECT_EQ(load(), 2);
  WriteText(dir.path() / "tokenizer_config.json", R"({"eos_token": "<unk>"})");
  EXPECT_EQ(load(), 0);
  WriteText(dir.path() / "tokenizer_config.json", R"({"eos_token": null})");
  EXPECT_EQ(load(), std::nullopt);  // the config decides, as for BOS and PAD
  WriteText(dir.path() / "generation_config.json", R"({"eos_token_id": 2})");
  std::filesystem::remove(dir.path() / "tokenizer_config.json");
  EXPECT_EQ(load(), 2);
}

TEST(TokenizerConfig, SplitSpecialTokens) {
  TempDir dir("tokenizer_split_special");
  WriteText(dir.path() / "tokenizer.json", ReadText(kFixtures / "qwen2/tokenizer.json"));
  const std::string text = "a<|endoftext|>";
  auto encode = [&](const std::string& config) {
    WriteText(dir.path() / "tokenizer_config.json", config);
    auto tok = Tokenizer::FromDirectory(dir.path());
    EXPECT_TRUE(tok.ok()) << tok.status();
    return tok.ok() ? *(*tok)->Encode(text) : std::vector<int64_t>();
  };
  auto plain = Tokenizer::FromFile(dir.path() / "tokenizer.json");
  ASSERT_TRUE(plain.ok()) << plain.status();
  const int64_t eot = *(*plain)->TokenToId("<|endoftext|>");
  EXPECT_EQ(encode("{}"), (std::vector<int64_t>{*(*plain)->TokenToId("a"), eot}));
  EXPECT_EQ(encode(R"({"split_special_tokens": false})"), encode("{}"));
  const std::vector<int64_t> split = encode(R"({"split_special_tokens": true})");
  EXPECT_GT(split.size(), 2u);
  EXPECT_EQ(std::count(split.begin(), split.end(), eot), 0);
  EXPECT_EQ(*(*plain)->Decode(split), text);

  WriteText(dir.path() / "tokenizer_config.json", R"({"split_special_tokens": "yes"})");
  EXPECT_THAT(Tokenizer::FromDirectory(dir.path()).status().message(),
              HasSubstr("tokenizer_config.json: split_special_tokens must be a boolean"));
}

}  // namespace
}  // namespace rlhf::tokenizer
