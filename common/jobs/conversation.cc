#include "common/jobs/conversation.h"

#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rlhf::jobs {
namespace {

using Json = nlohmann::ordered_json;

absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

absl::Status LineError(std::string_view where, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(Absl(where), ": ", Absl(why)));
}

// A non-empty list of {"role": string, "content": string or null, ...}.
absl::Status CheckMessages(const Json& object, const char* key, std::string_view where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    return LineError(where, absl::StrCat("missing field \"", key, "\""));
  }
  if (!it->is_array()) {
    return LineError(
        where, absl::StrCat("field \"", key, "\" must be a list of messages like the prompt, not ",
                            it->type_name()));
  }
  if (it->empty()) return LineError(where, absl::StrCat("field \"", key, "\" has no messages"));
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& message = (*it)[i];
    const std::string at = absl::StrCat("field \"", key, "\" message ", i, ": ");
    if (!message.is_object()) {
      return LineError(
          where, absl::StrCat(at, "expected {\"role\", \"content\"}, got ", message.type_name()));
    }
    if (!message.contains("role") || !message["role"].is_string() ||
        message["role"].get<std::string>().empty()) {
      return LineError(where, absl::StrCat(at, "\"role\" must be a non-empty string"));
    }
    auto content = message.find("content");
    if (content != message.end() && content->is_array()) {
      return LineError(where, absl::StrCat(at,
                                           "\"content\" as a list of parts (multimodal) is not "
                                           "supported; use a string"));
    }
    if (content == message.end() || !(content->is_string() || content->is_null())) {
      return LineError(where, absl::StrCat(at, "\"content\" must be a string"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsConversational(const Json& object) {
  if (object.contains("messages")) return true;
  auto prompt = object.find("prompt");
  return prompt != object.end() && prompt->is_array();
}

absl::StatusOr<std::shared_ptr<const Json>> ParseConversation(const Json& object,
                                                              DatasetFormat format,
                                                              std::string_view where) {
  auto out = std::make_shared<Json>(Json::object());
  // The line's own template arguments travel with it (TRL's SFTTrainer passes both).
  if (auto tools = object.find("tools"); tools != object.end() && !tools->is_null()) {
    if (!tools->is_array()) return LineError(where, "field \"tools\" must be a list");
    (*out)["tools"] = *tools;
  }
  if (auto kwargs = object.find("chat_template_kwargs");
      kwargs != object.end() && !kwargs->is_null()) {
    if (!kwargs->is_object()) {
      return LineError(where, "field \"chat_template_kwargs\" must be an object");
    }
    (*out)["chat_template_kwargs"] = *kwargs;
  }
  if (object.contains("messages") && !object.contains("prompt")) {
    if (format != DatasetFormat::kPromptCompletion) {
      return LineError(where, absl::StrCat("a \"messages\" conversation is an SFT example; this "
                                           "job's data is in the ",
                                           Absl(DatasetFormatName(format)),
                                           " format (\"prompt\" as a list of messages)"));
    }
    if (absl::Status s = CheckMessages(object, "messages", where); !s.ok()) return s;
    const Json& messages = object["messages"];
    size_t last = messages.size();
    while (last > 0 && messages[last - 1]["role"] != "assistant") --last;
    if (last == 0) return LineError(where, "\"messages\" has no assistant message to train on");
    if (last == 1) return LineError(where, "\"messages\" has no turn before the assistant's");
    (*out)["prompt"] = Json(messages.begin(), messages.begin() + static_cast<long>(last - 1));
    (*out)["completion"] = Json::array({messages[last - 1]});
    return std::shared_ptr<const Json>(std::move(out));
  }
  if (absl::Status s = CheckMessages(object, "prompt", where); !s.ok()) return s;
  (*out)["prompt"] = object["prompt"];
  const char* answers[2] = {nullptr, nullptr};
  if (format == DatasetFormat::kPromptCompletion || format == DatasetFormat::kUnpairedPreference) {
    answers[0] = "completion";
  } else if (format == DatasetFormat::kPreference) {
    answers[0] = "chosen";
    answers[1] = "rejected";
  }
  for (const char* key : answers) {
    if (key == nullptr) continue;
    if (absl::Status s = CheckMessages(object, key, where); !s.ok()) return s;
    (*out)[key] = object[key];
  }
  return std::shared_ptr<const Json>(std::move(out));
}

absl::Status RenderConversation(const chat::ChatTemplate& chat_template, Example* example) {
  auto text = chat::ApplyToExample(chat_template, *example->conversation);
  if (!text.ok()) return text.status();
  example->prompt = std::move(text->prompt);
  example->completion = std::move(text->completion);
  example->chosen = std::move(text->chosen);
  example->rejected = std::move(text->rejected);
  return absl::OkStatus();
}

}  // namespace rlhf::jobs
