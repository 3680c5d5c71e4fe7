// Compares rlhf::tokenizer with the goldens that tests/golden/make_tokenizer_goldens.py
// made with tokenizers 0.22.1 / transformers 4.57.1: ids from transformers' AutoTokenizer
// (split_special_tokens included), decodes from tokenizers, eos_token_id from
// AutoTokenizer, and transformers' decode of ids past the vocabulary.

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/tokenizer/tokenizer.h"

namespace rlhf::tokenizer {
namespace {

const std::filesystem::path kFixtures =
    std::filesystem::path(RLHF_SOURCE_DIR) / "tests/golden/fixtures/tokenizers";

nlohmann::json LoadGoldens() {
  std::ifstream in(kFixtures / "goldens.json");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return nlohmann::json::parse(buffer.str());
}

std::string Printable(const std::string& s) { return nlohmann::json(s).dump(); }

std::optional<int64_t> OptionalId(const nlohmann::json& id) {
  return id.is_null() ? std::nullopt : std::optional<int64_t>(id.get<int64_t>());
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, MatchesReference) {
  const nlohmann::json goldens = LoadGoldens();
  const std::string name = GetParam();
  const nlohmann::json& entry = goldens["tokenizers"][name];
  const auto& strings = goldens["strings"];
  ASSERT_EQ(entry["cases"].size(), strings.size());

  auto from_dir = Tokenizer::FromDirectory(kFixtures / name);
  ASSERT_TRUE(from_dir.ok()) << from_dir.status();
  auto from_file = Tokenizer::FromFile(kFixtures / name / "tokenizer.json");
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  const Tokenizer& tok = **from_dir;

  EXPECT_EQ(tok.vocab_size(), entry["vocab_size"].get<int64_t>());
  EXPECT_EQ((*from_file)->vocab_size(), entry["vocab_size"].get<int64_t>());
  EXPECT_EQ(tok.bos_id(), OptionalId(entry["bos_id"]));
  EXPECT_EQ(tok.pad_id(), OptionalId(entry["pad_id"]));
  EXPECT_EQ(tok.eos_ids(), entry["eos_ids"].get<std::vector<int64_t>>());
  // transformers' tokenizer.eos_token_id; a lone tokenizer.json has none.
  EXPECT_EQ(tok.eos_token_id(), OptionalId(entry["eos_token_id"]));
  EXPECT_EQ((*from_file)->eos_token_id(), std::nullopt);
  // tokenizer.json alone encodes like the directory unless tokenizer_config changes that
  // (split_special_tokens); then FromFile must differ somewhere, or the case tests nothing.
  const bool from_file_matches = entry["from_file_matches"].get<bool>();
  int from_file_differs = 0;

  int compared = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const std::string text = strings[i].get<std::string>();
    const nlohmann::json& expected = entry["cases"][i];
    SCOPED_TRACE(name + " string #" + std::to_string(i) + " " + Printable(text));
    const auto ids = expected["ids"].get<std::vector<int64_t>>();
    const auto ids_no_special = expected["ids_no_special"].get<std::vector<int64_t>>();

    for (const Tokenizer* t : {&tok, static_cast<const Tokenizer*>(from_file->get())}) {
      auto with = t->Encode(text);
      ASSERT_TRUE(with.ok()) << with.status();
      auto without = t->Encode(text, /*add_special_tokens=*/false);
      ASSERT_TRUE(without.ok()) << without.status();
      if (t != &tok && !from_file_matches) {
        from_file_differs += *with != ids || *without != ids_no_special;
        continue;
      }
      EXPECT_EQ(*with, ids);
      EXPECT_EQ(*without, ids_no_special);
    }
    auto decoded = tok.Decode(ids);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(Printable(*decoded), Printable(expected["decode"].get<std::string>()));
    auto skipped = tok.Decode(ids, /*skip_special_tokens=*/true);
    ASSERT_TRUE(skipped.ok()) << skipped.status();
    EXPECT_EQ(Printable(*skipped), Printable(expected["decode_skip_special"].get<std::string>()));
    if (expected["roundtrip"].get<bool>()) {
      auto again = tok.Encode(text);
      ASSERT_TRUE(again.ok());
      auto text_again = tok.Decode(*again, /*skip_special_tokens=*/true);
      ASSERT_TRUE(text_again.ok());
      EXPECT_EQ(Printable(*text_again), Printable(text));
    }
    ++compared;
  }
  if (!from_file_matches) {
    EXPECT_GT(from_file_differs, 0);
  }

  // Ids past the vocabulary (an embedding matrix larger than the tokenizer) are skipped.
  const nlohmann::json& out_of_range = entry["decode_out_of_range"];
  const auto ids = out_of_range["ids"].get<std::vector<int64_t>>();
  for (const bool skip_special : {false, true}) {
    auto decoded = tok.Decode(ids, skip_special);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(
        Printable(*decoded),
        Printable(
            out_of_range[skip_special ? "decode_skip_special" : "decode"].get<std::string>()));
  }
  RecordProperty("goldens_compared", compared);
  std::printf("[ golden   ] %s: %d strings compared\n", name.c_str(), compared);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, GoldenTest,
                         ::testing::Values("gpt2", "gpt2_prefix_space", "added_tokens", "llama3",
                                           "qwen2", "qwen2_chat", "qwen2_split_special", "llama2",
                                           "mistral", "mistral_always"));

TEST(GoldenTest, CoversEveryFixture) {
  const nlohmann::json goldens = LoadGoldens();
  EXPECT_EQ(goldens["tokenizers"].size(), 10u);
  EXPECT_EQ(goldens["tokenizers_version"], "0.22.1");
  EXPECT_EQ(goldens["transformers_version"], "4.57.1");
}

}  // namespace
}  // namespace rlhf::tokenizer
