// Conversational datasets: every format's lines parse, bad ones name the field and message,
// and TokenizeExamples encodes exactly TRL 0.24's rendering (chat_templates.json's TRL cases,
// Qwen2.5's template on the qwen2_chat tokenizer fixture).

#include "common/jobs/conversation.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/jobs/tokenized_data.h"

namespace rlhf::jobs {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kSource = RLHF_SOURCE_DIR;

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(ConversationTest, EachFormatParses) {
  auto sft = ParseExampleLine(
      R"({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                       {"role": "assistant", "content": "a1"}, {"role": "user", "content": "q2"},
                       {"role": "assistant", "content": "a2"}]})",
      DatasetFormat::kPromptCompletion, "f:1");
  ASSERT_TRUE(sft.ok()) << sft.status();
  ASSERT_NE(sft->conversation, nullptr);
  // The last assistant turn is trained on; everything before it is the prompt.
  EXPECT_EQ((*sft->conversation)["prompt"].size(), 4u);
  EXPECT_EQ((*sft->conversation)["completion"][0]["content"], "a2");

  auto online =
      ParseExampleLine(R"({"prompt": [{"role": "user", "content": "2+2?"}], "reference": "4"})",
                       DatasetFormat::kPromptOnly, "f:2");
  ASSERT_TRUE(online.ok()) << online.status();
  EXPECT_EQ(online->reference, "4");

  auto kto = ParseExampleLine(
      R"({"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": "a"}], "label": true})",
      DatasetFormat::kUnpairedPreference, "f:3");
  ASSERT_TRUE(kto.ok()) << kto.status();
  EXPECT_TRUE(kto->label);

  auto dpo = ParseExampleLine(
      R"({"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "y"}],
          "rejected": [{"role": "assistant", "content": "n"}]})",
      DatasetFormat::kPreference, "f:4");
  ASSERT_TRUE(dpo.ok()) << dpo.status();
  EXPECT_EQ((*dpo->conversation)["rejected"][0]["content"], "n");
}

TEST(ConversationTest, BadLinesNameTheFieldAndMessage) {
  auto error = [](const char* line, DatasetFormat format) {
    return Message(ParseExampleLine(line, format, "f:9").status());
  };
  EXPECT_THAT(error(R"({"prompt": [{"role": "user", "content": [{"type": "text"}]}]})",
                    DatasetFormat::kPromptOnly),
              HasSubstr("f:9: field \"prompt\" message 0: \"content\" as a list of parts"));
  EXPECT_THAT(error(R"({"prompt": [{"content": "x"}]})", DatasetFormat::kPromptOnly),
              HasSubstr("message 0: \"role\" must be a non-empty string"));
  EXPECT_THAT(
      error(R"({"prompt": [{"role": "user", "content": "x"}, 3]})", DatasetFormat::kPromptOnly),
      HasSubstr("message 1: expected {\"role\", \"content\"}, got number"));
  EXPECT_THAT(error(R"({"prompt": []})", DatasetFormat::kPromptOnly),
              HasSubstr("field \"prompt\" has no messages"));
  EXPECT_THAT(
      error(R"({"prompt": [{"role": "user", "content": "x"}]})", DatasetFormat::kPreference),
      HasSubstr("missing field \"chosen\""));
  EXPECT_THAT(error(R"({"messages": [{"role": "user", "content": "x"}]})",
                    DatasetFormat::kPromptCompletion),
              HasSubstr("no assistant message to train on"));
  EXPECT_THAT(error(R"({"prompt": [{"role": "user", "content": "x"}], "tools": {"name": "f"}})",
                    DatasetFormat::kPromptOnly),
              HasSubstr("field \"tools\" must be a list"));
  EXPECT_THAT(error(R"({"prompt": [{"role": "user", "content": "x"}], "chat_template_kwargs": 1})",
                    DatasetFormat::kPromptOnly),
              HasSubstr("field \"chat_template_kwargs\" must be an object"));
  EXPECT_THAT(
      error(R"({"messages": [{"role": "user", "content": "x"}]})", DatasetFormat::kPreference),
      HasSubstr("a \"messages\" conversation is an SFT example"));
  EXPECT_THAT(error(R"({"prompt": "text", "completion": [{"role": "assistant", "content": "x"}]})",
                    DatasetFormat::kPromptCompletion),
              HasSubstr("field \"completion\" is a list of messages but \"prompt\" is a string"));
}

// The qwen2_chat tokenizer fixture with Qwen2.5's chat template beside it.
fs::path ChatModelDir() {
  const fs::path dir =
      fs::temp_directory_path() / ("rlhf_conversation_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const auto& entry :
       fs::directory_iterator(kSource / "tests/golden/fixtures/tokenizers/qwen2_chat")) {
    fs::copy_file(entry.path(), dir / entry.path().filename(),
                  fs::copy_options::overwrite_existing);
  }
  fs::copy_file(kSource / "tests/golden/fixtures/chat/templates/qwen2_5.jinja",
                dir / "chat_template.jinja", fs::copy_options::overwrite_existing);
  return dir;
}

TEST(ConversationTest, TokenizesTrlsRenderingWithoutExtraSpecialTokens) {
  const fs::path dir = ChatModelDir();
  auto tokenizer = tokenizer::Tokenizer::FromDirectory(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  ASSERT_NE((*tokenizer)->chat_template(), nullptr) << (*tokenizer)->chat_template_status();
  std::ifstream in(kSource / "tests/golden/fixtures/chat/chat_templates.json");
  const auto cases = nlohmann::ordered_json::parse(in);
  int checked = 0;
  for (const auto& c : cases) {
    if (!c.contains("trl_input") || c["template"] != "qwen2_5") continue;
    const auto& input = c["trl_input"];
    const auto& expected = c["trl_output"];
    DatasetFormat format = DatasetFormat::kPromptOnly;
    if (input.contains("chosen")) format = DatasetFormat::kPreference;
    if (input.contains("completion")) format = DatasetFormat::kPromptCompletion;
    if (input.contains("messages")) continue;  // TRL trains the whole text; we split it
    SCOPED_TRACE(c["name"].get<std::string>());
    auto example = ParseExampleLine(input.dump(), format, "golden");
    ASSERT_TRUE(example.ok()) << example.status();
    TokenizeOptions options{
        .max_prompt_tokens = 4096, .max_response_tokens = 4096, .path = "golden"};
    auto tokenized = TokenizeExamples(**tokenizer, {*example}, format, options);
    ASSERT_TRUE(tokenized.ok()) << tokenized.status();
    auto encode = [&](const std::string& key) {
      return *(*tokenizer)->Encode(expected[key].get<std::string>(), /*add_special_tokens=*/false);
    };
    EXPECT_EQ((*tokenized)[0].prompt, encode("prompt"));
    EXPECT_EQ((*tokenized)[0].prompt_text, expected["prompt"].get<std::string>());
    if (expected.contains("completion"))
      EXPECT_EQ((*tokenized)[0].completion, encode("completion"));
    if (expected.contains("chosen")) EXPECT_EQ((*tokenized)[0].chosen, encode("chosen"));
    if (expected.contains("rejected")) EXPECT_EQ((*tokenized)[0].rejected, encode("rejected"));
    ++checked;
  }
  EXPECT_EQ(checked, 5);
  fs::remove_all(dir);
}

TEST(ConversationTest, NoChatTemplateIsAClearError) {
  auto tokenizer =
      tokenizer::Tokenizer::FromDirectory(kSource / "tests/golden/fixtures/tokenizers/qwen2_chat");
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_EQ((*tokenizer)->chat_template(), nullptr);
  auto example = ParseExampleLine(R"({"prompt": [{"role": "user", "content": "q"}]})",
                                  DatasetFormat::kPromptOnly, "x");
  ASSERT_TRUE(example.ok());
  example->line = 3;
  TokenizeOptions options{.max_prompt_tokens = 16, .max_response_tokens = 16, .path = "data.jsonl"};
  auto tokenized = TokenizeExamples(**tokenizer, {*example}, DatasetFormat::kPromptOnly, options);
  ASSERT_FALSE(tokenized.ok());
  EXPECT_THAT(Message(tokenized.status()),
              HasSubstr("data.jsonl:3: a conversational example needs the model's chat template: "
                        "the model in"));
}

}  // namespace
}  // namespace rlhf::jobs
