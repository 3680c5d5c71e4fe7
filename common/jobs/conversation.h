#pragma once
// TRL's conversational dataset formats: the fields of a line are lists of messages
// ({"role", "content"}) instead of strings, and the model's chat template turns them into
// text (trl.data_utils.apply_chat_template):
//   prompt-only      {"prompt": [...]}                         (online RL)
//   prompt+completion{"prompt": [...], "completion": [...]}    (SFT, KTO with "label")
//                    or {"messages": [...]}: the last assistant message is the completion
//                    and everything before it the prompt (earlier turns are context)
//   preference       {"prompt": [...], "chosen": [...], "rejected": [...]}
// A line may also carry "tools" (a list of function schemas) and "chat_template_kwargs" (an
// object): both reach the template, as TRL's SFTTrainer passes them.

#include <memory>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/statusor.h"
#include "common/chat/chat_template.h"
#include "common/jobs/dataset.h"

namespace rlhf::jobs {

// True when `object` (one dataset line) is conversational: "messages", or a list "prompt".
bool IsConversational(const nlohmann::ordered_json& object);

// Checks a conversational line for `format` and returns the messages to render, in TRL's
// field names ("messages" already split into "prompt" and "completion"). InvalidArgument
// prefixed with `where` naming the field and message index at fault.
absl::StatusOr<std::shared_ptr<const nlohmann::ordered_json>> ParseConversation(
    const nlohmann::ordered_json& object, DatasetFormat format, std::string_view where);

// Fills example->prompt, completion, chosen and rejected from example->conversation.
absl::Status RenderConversation(const chat::ChatTemplate& chat_template, Example* example);

}  // namespace rlhf::jobs
