// libFuzzer target for rlhf::chat (chat templates come from model directories, messages
// from datasets). The first input byte picks the mode:
//   even  parse the rest as a template and render it with a fixed conversation;
//   odd   parse the rest as a JSON list of messages and render it with each fixture
//         template (Qwen2.5, Llama 3.1/3.2, Mistral v0.3, ChatML), as a prompt and as a
//         continued final message.
// Beyond "no crash, no hang", every error must come back as a Status: runaway loops hit
// the work budget, deep nesting the parser's and values' depth limits.
// Fixtures: $RLHF_CHAT_TEMPLATE_FIXTURES or tests/golden/fixtures/chat/templates. Seeds:
// tests/fuzz/corpus/chat_template.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/chat/chat_template.h"

namespace {

using rlhf::chat::ApplyOptions;
using rlhf::chat::ChatTemplate;

void Check(bool ok) {
  if (!ok) std::abort();
}

std::filesystem::path FixtureDir() {
  if (const char* dir = std::getenv("RLHF_CHAT_TEMPLATE_FIXTURES")) return dir;
  return std::filesystem::path(__FILE__).parent_path().parent_path() /
         "golden/fixtures/chat/templates";
}

const std::vector<ChatTemplate>& Fixtures() {
  static const auto* fixtures = [] {
    auto* loaded = new std::vector<ChatTemplate>();
    const nlohmann::ordered_json special = {{"bos_token", "<s>"}, {"eos_token", "</s>"}};
    for (const char* name : {"qwen2_5", "llama3_1", "llama3_2", "mistral_v0_3", "chatml"}) {
      std::ifstream in(FixtureDir() / (std::string(name) + ".jinja"));
      std::ostringstream source;
      source << in.rdbuf();
      auto parsed = ChatTemplate::FromSource(source.str(), special);
      if (parsed.ok()) loaded->push_back(*std::move(parsed));
    }
    auto chatml = ChatTemplate::FromSource(
        "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}", special);
    Check(chatml.ok());
    loaded->push_back(*std::move(chatml));
    return loaded;
  }();
  return *fixtures;
}

const nlohmann::ordered_json& Conversation() {
  static const auto* messages = new nlohmann::ordered_json(nlohmann::ordered_json::parse(R"([
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "héllo"},
    {"role": "assistant", "content": "hi", "tool_calls": [
      {"id": "call12345", "type": "function",
       "function": {"name": "f", "arguments": {"x": [1, 2.5, null, true]}}}]},
    {"role": "tool", "content": "{\"ok\": 1}"},
    {"role": "user", "content": "thanks"}])"));
  return *messages;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 64 * 1024) return 0;
  const std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    auto parsed = ChatTemplate::FromSource(rest, {{"eos_token", "</s>"}});
    if (!parsed.ok()) return 0;
    for (bool generation : {false, true}) {
      ApplyOptions options;
      options.add_generation_prompt = generation;
      (void)parsed->Apply(Conversation(), options).status();
    }
    return 0;
  }
  const nlohmann::ordered_json messages =
      nlohmann::ordered_json::parse(rest, nullptr, /*allow_exceptions=*/false);
  if (messages.is_discarded()) return 0;
  for (const ChatTemplate& chat_template : Fixtures()) {
    ApplyOptions prompt;
    prompt.add_generation_prompt = true;
    (void)chat_template.Apply(messages, prompt).status();
    ApplyOptions continued;
    continued.continue_final_message = true;
    (void)chat_template.Apply(messages, continued).status();
    if (messages.is_object()) (void)rlhf::chat::ApplyToExample(chat_template, messages).status();
  }
  return 0;
}
