#include "common/jobs/tokenized_data.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/jobs/conversation.h"

namespace rlhf::jobs {
namespace {

absl::Status AtLine(const absl::Status& status, const std::string& path, int line) {
  return absl::Status(status.code(), absl::StrCat(path, ":", line, ": ", status.message()));
}

}  // namespace

absl::StatusOr<std::vector<TokenizedExample>> TokenizeExamples(
    const tokenizer::Tokenizer& tokenizer, const std::vector<Example>& examples,
    DatasetFormat format, const TokenizeOptions& options) {
  if (options.max_prompt_tokens <= 0 || options.max_response_tokens <= 0) {
    return absl::InvalidArgumentError("max_prompt_tokens and max_response_tokens must be positive");
  }
  // TRL 0.24's SFT/DPO/KTO trainers append tokenizer.eos_token_id: tokenizer_config's
  // eos_token (for chat models <|im_end|>), not generation_config's first eos id.
  const std::optional<int64_t> eos = tokenizer.eos_token_id();
  // A templated answer ends as the template ends the assistant turn (TRL's SFTTrainer adds
  // no EOS to conversational data).
  auto encode_response = [&](const std::string& text, int line, bool templated,
                             std::vector<int64_t>* ids) -> absl::Status {
    auto encoded = tokenizer.Encode(text, /*add_special_tokens=*/false);
    if (!encoded.ok()) return AtLine(encoded.status(), options.path, line);
    *ids = std::move(*encoded);
    if (eos.has_value() && !templated) ids->push_back(*eos);  // the model learns to stop
    if (static_cast<int64_t>(ids->size()) > options.max_response_tokens) {
      ids->resize(options.max_response_tokens);
    }
    return absl::OkStatus();
  };
  std::vector<TokenizedExample> out;
  out.reserve(examples.size());
  for (const Example& original : examples) {
    Example rendered;
    const bool templated = original.conversation != nullptr;
    if (templated) {
      if (tokenizer.chat_template() == nullptr) {
        return AtLine(absl::InvalidArgumentError(
                          absl::StrCat("a conversational example needs the model's chat template: ",
                                       tokenizer.chat_template_status().message())),
                      options.path, original.line);
      }
      rendered = original;
      absl::Status status = RenderConversation(*tokenizer.chat_template(), &rendered);
      if (!status.ok()) return AtLine(status, options.path, original.line);
    }
    const Example& example = templated ? rendered : original;
    TokenizedExample t;
    // The template writes the special tokens itself (apply_chat_template encodes without).
    auto prompt = tokenizer.Encode(example.prompt, /*add_special_tokens=*/!templated);
    if (!prompt.ok()) return AtLine(prompt.status(), options.path, example.line);
    if (prompt->empty() && tokenizer.bos_id()) prompt->push_back(*tokenizer.bos_id());
    if (prompt->empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(options.path, ":", example.line, ": the prompt encodes to no tokens"));
    }
    if (static_cast<int64_t>(prompt->size()) > options.max_prompt_tokens) {  // keep the end
      prompt->erase(prompt->begin(), prompt->end() - options.max_prompt_tokens);
    }
    t.prompt = std::move(*prompt);
    t.prompt_text = example.prompt;
    t.reference = example.reference;
    t.desirable = example.label;
    absl::Status status;
    if (format == DatasetFormat::kPromptCompletion ||
        format == DatasetFormat::kUnpairedPreference) {
      status = encode_response(example.completion, example.line, templated, &t.completion);
    } else if (format == DatasetFormat::kPreference) {
      status = encode_response(example.chosen, example.line, templated, &t.chosen);
      if (status.ok())
        status = encode_response(example.rejected, example.line, templated, &t.rejected);
    }
    if (!status.ok()) return status;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace rlhf::jobs
