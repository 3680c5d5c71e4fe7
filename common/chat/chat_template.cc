#include "common/chat/chat_template.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/chat/jinja_builtins.h"

namespace rlhf::chat {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// Python's str.strip().
std::string Strip(const std::string& s) { return StripChars(s, Value(), true, true); }

std::string CommonPrefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return a.substr(0, n);
}

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::FromSource(
    const std::string& source, const nlohmann::ordered_json& special_tokens) {
  auto parsed = Template::Parse(source);
  if (!parsed.ok()) return parsed.status();
  ChatTemplate out;
  out.template_ = *std::move(parsed);
  if (special_tokens.is_object()) {
    for (const auto& [key, value] : special_tokens.items()) {
      if (value.is_string()) out.special_tokens_.emplace_back(key, Value::String(value));
    }
  }
  return out;
}

absl::StatusOr<ChatTemplate> ChatTemplate::Load(const fs::path& dir) {
  nlohmann::ordered_json config = nlohmann::ordered_json::object();
  const fs::path config_path = dir / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    auto text = ReadFile(config_path);
    if (!text.ok()) return text.status();
    config = nlohmann::ordered_json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (config.is_discarded() || !config.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(config_path.string(), ": not a JSON object"));
    }
  }
  nlohmann::ordered_json special = nlohmann::ordered_json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token"}) {
    auto it = config.find(key);
    if (it == config.end()) continue;
    if (it->is_string()) special[key] = *it;
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
      special[key] = (*it)["content"];
    }
  }
  std::string source, where;
  const fs::path jinja_path = dir / "chat_template.jinja";
  if (fs::exists(jinja_path)) {
    auto text = ReadFile(jinja_path);
    if (!text.ok()) return text.status();
    source = *std::move(text);
    where = jinja_path.string();
  } else if (auto it = config.find("chat_template"); it != config.end() && !it->is_null()) {
    where = config_path.string() + " chat_template";
    if (it->is_string()) {
      source = it->get<std::string>();
    } else if (it->is_array()) {
      for (const auto& named : *it) {
        if (named.is_object() && named.contains("name") && named["name"] == "default" &&
            named.contains("template") && named["template"].is_string()) {
          source = named["template"].get<std::string>();
        }
      }
      if (source.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": no template named \"default\""));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat(where, ": must be a string or a list"));
    }
  } else {
    return absl::NotFoundError(
        absl::StrCat("the model in ", dir.string(),
                     " has no chat template (no chat_template.jinja, no \"chat_template\" in "
                     "tokenizer_config.json)"));
  }
  auto loaded = FromSource(source, special);
  if (!loaded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", loaded.status().message()));
  }
  return loaded;
}

absl::StatusOr<std::string> ChatTemplate::Apply(
    const nlohmann::ordered_json& messages, const ApplyOptions& options,
    const nlohmann::ordered_json* extra_variables) const {
  if (!messages.is_array()) return absl::InvalidArgumentError("messages must be a list");
  if (options.add_generation_prompt && options.continue_final_message) {
    return absl::InvalidArgumentError(
        "add_generation_prompt and continue_final_message cannot both be set");
  }
  // transformers marks the end of the final message, renders, and cuts at the mark.
  static const std::string kTag = "CONTINUE_FINAL_MESSAGE_TAG ";
  nlohmann::ordered_json chat = messages;
  std::string final_message;
  if (options.continue_final_message) {
    if (chat.empty() || !chat.back().is_object() || !chat.back().contains("content") ||
        !chat.back()["content"].is_string()) {
      return absl::InvalidArgumentError("continue_final_message needs a final text message");
    }
    final_message = chat.back()["content"].get<std::string>();
    chat.back()["content"] = final_message + kTag;
  }
  ValueDict variables = special_tokens_;
  variables.emplace_back("tools", Value::None());
  variables.emplace_back("documents", Value::None());
  variables.emplace_back("add_generation_prompt", Value::Bool(options.add_generation_prompt));
  try {  // FromJson refuses JSON nested too deep
    variables.emplace_back("messages", Value::FromJson(chat));
    if (extra_variables != nullptr && extra_variables->is_object()) {
      for (const auto& item : extra_variables->items()) {
        const std::string& key = item.key();
        const nlohmann::ordered_json& value = item.value();
        auto it = std::find_if(variables.begin(), variables.end(),
                               [&](const auto& v) { return v.first == key; });
        if (it != variables.end()) {
          it->second = Value::FromJson(value);
        } else {
          variables.emplace_back(key, Value::FromJson(value));
        }
      }
    }
  } catch (const JinjaError& error) {
    return absl::InvalidArgumentError(absl::StrCat("chat template input: ", error.what()));
  }
  auto rendered = template_.Render(variables);
  if (!rendered.ok() || !options.continue_final_message) return rendered;
  const std::string tag = Strip(kTag);
  if (rendered->find(Strip(final_message)) == std::string::npos ||
      rendered->find(tag) == std::string::npos) {
    return absl::InvalidArgumentError(
        "continue_final_message is set but the final message does not appear in the chat "
        "after applying the chat template");
  }
  const size_t at = rendered->rfind(tag);
  const bool spacing_kept = rendered->compare(at, kTag.size(), kTag) == 0;
  rendered->resize(at);
  if (!spacing_kept) {
    while (!rendered->empty() && std::isspace(static_cast<unsigned char>(rendered->back()))) {
      rendered->pop_back();
    }
  }
  return rendered;
}

absl::StatusOr<ConversationText> ApplyToExample(const ChatTemplate& chat_template,
                                                const nlohmann::ordered_json& example) {
  ConversationText out;
  // A line's own template arguments: "chat_template_kwargs", and "tools" as TRL's
  // SFTTrainer passes it.
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  if (auto kwargs = example.find("chat_template_kwargs"); kwargs != example.end()) {
    if (!kwargs->is_object())
      return absl::InvalidArgumentError("\"chat_template_kwargs\" must be an object");
    extra = *kwargs;
  }
  if (auto tools = example.find("tools"); tools != example.end() && !tools->is_null()) {
    if (!tools->is_array()) return absl::InvalidArgumentError("\"tools\" must be a list");
    extra["tools"] = *tools;
  }
  if (example.contains("messages")) {
    auto text = chat_template.Apply(example["messages"], {}, &extra);
    if (!text.ok()) return text.status();
    out.text = *std::move(text);
  }
  if (!example.contains("prompt")) return out;
  const nlohmann::ordered_json& prompt = example["prompt"];
  if (!prompt.is_array() || prompt.empty() || !prompt.back().is_object()) {
    return absl::InvalidArgumentError("\"prompt\" must be a non-empty list of messages");
  }
  auto role = prompt.back().find("role");
  const std::string last_role =
      role != prompt.back().end() && role->is_string() ? role->get<std::string>() : "";
  ApplyOptions prompt_options;
  if (last_role == "user") {
    prompt_options.add_generation_prompt = true;
  } else if (last_role == "assistant") {
    prompt_options.continue_final_message = true;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("invalid role in the prompt's last message: \"",
                                                   last_role, "\" (expected user or assistant)"));
  }
  auto prompt_text = chat_template.Apply(prompt, prompt_options, &extra);
  if (!prompt_text.ok()) return prompt_text.status();
  out.prompt = *std::move(prompt_text);
  // Each answer: render prompt + answer, keep the prompt's common prefix (TRL does this for
  // templates whose generation prompt differs from the rendered assistant turn).
  for (auto [key, field] : {std::pair{"chosen", &out.chosen}, std::pair{"rejected", &out.rejected},
                            std::pair{"completion", &out.completion}}) {
    if (!example.contains(key)) continue;
    nlohmann::ordered_json whole = prompt;
    for (const auto& message : example[key]) whole.push_back(message);
    auto rendered = chat_template.Apply(whole, {}, &extra);
    if (!rendered.ok()) return rendered.status();
    out.prompt = CommonPrefix(out.prompt, *rendered);
    *field = rendered->substr(out.prompt.size());
  }
  return out;
}

}  // namespace rlhf::chat
