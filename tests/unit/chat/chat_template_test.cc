// Real chat templates (Qwen2.5, Llama 3.1 and 3.2, Mistral v0.3, ChatML) against
// transformers 4.57.1's apply_chat_template and TRL 0.24's conversational conversion:
// tests/golden/fixtures/chat/chat_templates.json (make_chat_template_goldens.py).

#include "common/chat/chat_template.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace rlhf::chat {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kFixtures = fs::path(RLHF_SOURCE_DIR) / "tests/golden/fixtures/chat";

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

nlohmann::ordered_json Cases() {
  std::ifstream in(kFixtures / "chat_templates.json");
  return nlohmann::ordered_json::parse(in);
}

ChatTemplate LoadOrDie(const std::string& name, const nlohmann::ordered_json& special_tokens) {
  auto loaded = ChatTemplate::FromSource(ReadText(kFixtures / "templates" / (name + ".jinja")),
                                         special_tokens);
  EXPECT_TRUE(loaded.ok()) << name << ": " << loaded.status();
  return *std::move(loaded);
}

TEST(ChatTemplateGoldenTest, RendersAsTransformersApplyChatTemplate) {
  int checked = 0;
  for (const auto& c : Cases()) {
    if (c.contains("trl_input")) continue;
    SCOPED_TRACE(c["template"].get<std::string>() + " " + c["name"].get<std::string>());
    nlohmann::ordered_json special = nlohmann::ordered_json::object();
    for (const char* key : {"bos_token", "eos_token"}) {
      if (c.contains(key)) special[key] = c[key];
    }
    ChatTemplate chat_template = LoadOrDie(c["template"], special);
    if (c.value("date_dependent", false)) {
      const std::string today = c["today"];
      chat_template.mutable_template().set_now_for_testing([today](const std::string& format) {
        EXPECT_EQ(format, "%d %b %Y");
        return today;
      });
    }
    nlohmann::ordered_json extra = c["extra"];
    extra["tools"] = c["tools"];
    extra["documents"] = c["documents"];
    ApplyOptions options;
    options.add_generation_prompt = c["add_generation_prompt"];
    options.continue_final_message = c["continue_final_message"];
    auto rendered = chat_template.Apply(c["messages"], options, &extra);
    ++checked;
    if (c.value("raises", false)) {
      ASSERT_FALSE(rendered.ok());
      EXPECT_THAT(std::string(rendered.status().message()),
                  HasSubstr(c["error_contains"].get<std::string>()));
      continue;
    }
    ASSERT_TRUE(rendered.ok()) << rendered.status();
    EXPECT_EQ(*rendered, c["rendered"].get<std::string>());
  }
  EXPECT_GE(checked, 45);
}

TEST(ChatTemplateGoldenTest, ConvertsConversationalExamplesAsTrl) {
  int checked = 0;
  for (const auto& c : Cases()) {
    if (!c.contains("trl_input")) continue;
    SCOPED_TRACE(c["template"].get<std::string>() + " " + c["name"].get<std::string>());
    ChatTemplate chat_template = LoadOrDie(c["template"], c["trl_tokenizer"]["special_tokens_map"]);
    auto converted = ApplyToExample(chat_template, c["trl_input"]);
    ASSERT_TRUE(converted.ok()) << converted.status();
    const auto& expected = c["trl_output"];
    int fields = 0;
    for (auto [key, value] :
         {std::pair{"prompt", &converted->prompt}, std::pair{"completion", &converted->completion},
          std::pair{"chosen", &converted->chosen}, std::pair{"rejected", &converted->rejected},
          std::pair{"text", &converted->text}}) {
      if (!expected.contains(key)) continue;
      EXPECT_EQ(*value, expected[key].get<std::string>()) << key;
      ++fields;
    }
    EXPECT_GE(fields, 1);
    ++checked;
  }
  EXPECT_EQ(checked, 12);
}

TEST(ChatTemplateLoadTest, FromAModelDirectory) {
  const fs::path dir =
      fs::temp_directory_path() / ("rlhf_chat_template_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
  };
  EXPECT_EQ(ChatTemplate::Load(dir).status().code(), absl::StatusCode::kNotFound);
  // tokenizer_config.json: a list of named templates, special tokens as {"content"} objects.
  write("tokenizer_config.json",
        R"({"eos_token": {"content": "</s>"}, "chat_template": [
             {"name": "tool_use", "template": "tools"},
             {"name": "default", "template": "{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}"}]})");
  auto loaded = ChatTemplate::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto rendered =
      loaded->Apply(nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])"), {});
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*rendered, "hi</s>");
  // chat_template.jinja wins over tokenizer_config.json, as in transformers.
  write("chat_template.jinja", "[{{ messages[0].content }}]");
  loaded = ChatTemplate::Load(dir);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(
      *loaded->Apply(nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])"), {}),
      "[hi]");
  // A broken template names its file and line.
  write("chat_template.jinja", "ok\n{% if %}");
  EXPECT_THAT(std::string(ChatTemplate::Load(dir).status().message()),
              HasSubstr("chat_template.jinja: chat template: line 2"));
  fs::remove_all(dir);
}

TEST(ChatTemplateLoadTest, BadConversationsAreClearErrors) {
  auto chat_template = ChatTemplate::FromSource(
      "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}", {});
  ASSERT_TRUE(chat_template.ok());
  auto example = [](const char* text) { return nlohmann::ordered_json::parse(text); };
  EXPECT_THAT(
      std::string(ApplyToExample(*chat_template,
                                 example(R"({"prompt": [{"role": "system", "content": "x"}]})"))
                      .status()
                      .message()),
      HasSubstr("invalid role in the prompt's last message: \"system\""));
  EXPECT_THAT(
      std::string(ApplyToExample(*chat_template, example(R"({"prompt": []})")).status().message()),
      HasSubstr("non-empty list of messages"));
  // Found by the fuzzer: a role that is not a string.
  EXPECT_THAT(std::string(ApplyToExample(*chat_template,
                                         example(R"({"prompt": [{"role": 44, "content": "x"}]})"))
                              .status()
                              .message()),
              HasSubstr("invalid role in the prompt's last message"));
  std::string deep = R"([{"role": "user", "content": "x", "extra": )";
  for (int i = 0; i < 2000; ++i) deep += "[";
  for (int i = 0; i < 2000; ++i) deep += "]";
  deep += "}]";
  EXPECT_THAT(std::string(chat_template->Apply(example(deep.c_str()), {}).status().message()),
              HasSubstr("nested more than 512 deep"));
  ApplyOptions both;
  both.add_generation_prompt = both.continue_final_message = true;
  EXPECT_FALSE(chat_template->Apply(example(R"([{"role": "user", "content": "x"}])"), both).ok());
}

}  // namespace
}  // namespace rlhf::chat
