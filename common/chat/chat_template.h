#pragma once
// A model's chat template, applied as transformers' apply_chat_template(tokenize=False)
// does, and TRL's conversion of conversational examples into prompt/completion text
// (trl.data_utils.apply_chat_template, TRL 0.24).

#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/statusor.h"
#include "common/chat/jinja_template.h"

namespace rlhf::chat {

struct ApplyOptions {
  bool add_generation_prompt = false;
  // Render the last message open-ended, as transformers' continue_final_message does: its
  // content gets a marker, and the text is cut at the marker.
  bool continue_final_message = false;
};

class ChatTemplate {
 public:
  // `dir`/chat_template.jinja, else tokenizer_config.json's "chat_template" (a string, or a
  // list of {"name", "template"} whose "default" is used), with the special tokens of
  // tokenizer_config.json (bos_token, eos_token, unk_token, pad_token: strings or
  // {"content": ...}). NotFound when the model has no template; InvalidArgument (naming
  // the file) when it does not parse.
  static absl::StatusOr<ChatTemplate> Load(const std::filesystem::path& dir);
  // A template from source; `special_tokens` is an object like {"eos_token": "</s>"}.
  static absl::StatusOr<ChatTemplate> FromSource(const std::string& source,
                                                 const nlohmann::ordered_json& special_tokens);

  // `messages`: a JSON list of {"role", "content", ...} (key order kept: tojson prints it).
  // Like transformers, `tools` and `documents` are none unless `extra_variables` (e.g.
  // {"tools": [...], "date_string": "..."}) sets them.
  absl::StatusOr<std::string> Apply(const nlohmann::ordered_json& messages,
                                    const ApplyOptions& options,
                                    const nlohmann::ordered_json* extra_variables = nullptr) const;

  Template& mutable_template() { return template_; }

 private:
  Template template_;
  ValueDict special_tokens_;
};

// A conversational example as text, the way TRL 0.24's apply_chat_template converts it
// (with the line's "chat_template_kwargs" and "tools" passed to the template):
//   {"messages"}                      -> text (the whole conversation);
//   {"prompt"}                        -> prompt with the generation prompt (or continuing a
//                                        final assistant message);
//   {"prompt", "completion"|"chosen"|"rejected"} -> the prompt as above, and each answer as
//                                        the rest of the rendered prompt + answer after their
//                                        common prefix with the prompt.
struct ConversationText {
  std::string prompt, completion, chosen, rejected, text;
};

// `example` is a JSON object whose conversational fields are lists of messages.
// InvalidArgument for a bad last prompt role or a template error.
absl::StatusOr<ConversationText> ApplyToExample(const ChatTemplate& chat_template,
                                                const nlohmann::ordered_json& example);

}  // namespace rlhf::chat
