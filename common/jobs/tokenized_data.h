#pragma once
// A JSONL dataset as token ids, encoded the way every job (and `rlhf eval`) sees it:
// the prompt with the tokenizer's special tokens, left-truncated to max_prompt_tokens
// (a prompt that encodes to nothing becomes BOS); each response without special tokens,
// followed by the tokenizer's eos_token (tokenizer_config.json, as TRL appends it; the
// model learns to stop), cut to max_response_tokens. Conversational examples are first
// rendered with the tokenizer's chat template (TRL's conversion); their prompt is encoded
// without special tokens (the template writes them) and their answers get no extra EOS.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/jobs/dataset.h"
#include "common/tokenizer/tokenizer.h"

namespace rlhf::jobs {

struct TokenizedExample {
  std::vector<int64_t> prompt, completion, chosen, rejected;
  std::string prompt_text, reference;
  bool desirable = false;  // KTO label
};

struct TokenizeOptions {
  int64_t max_prompt_tokens = 0;    // must be positive
  int64_t max_response_tokens = 0;  // must be positive
  std::string path;                 // names the file in errors ("path:line: ...")
};

// Encodes the fields `format` carries. InvalidArgument names file:line for text the
// tokenizer rejects or a prompt that encodes to no tokens (and no BOS exists).
absl::StatusOr<std::vector<TokenizedExample>> TokenizeExamples(
    const tokenizer::Tokenizer& tokenizer, const std::vector<Example>& examples,
    DatasetFormat format, const TokenizeOptions& options);

}  // namespace rlhf::jobs
