#pragma once
// JSONL training data in TRL's four standard formats, each also conversational (lists of
// {"role", "content"} messages, rendered with the model's chat template: conversation.h).
// One JSON object per line; blank lines are skipped; keys other than the format's are
// ignored.
// Every bad line is reported with file:line and why, all at once (up to a limit).

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "absl/status/statusor.h"

namespace rlhf::jobs {

enum class DatasetFormat {
  kPromptOnly,          // {"prompt"}: online RL (optional "reference" for exact_match)
  kPromptCompletion,    // {"prompt", "completion"}: SFT
  kPreference,          // {"prompt", "chosen", "rejected"}: DPO family, reward model
  kUnpairedPreference,  // {"prompt", "completion", "label": bool}: KTO
};

// "prompt", "prompt+completion", ... for messages.
std::string_view DatasetFormatName(DatasetFormat format);

// The format an algorithm trains on (see JobSpec's algorithm list), or InvalidArgument.
absl::StatusOr<DatasetFormat> DatasetFormatForAlgorithm(std::string_view algorithm);

struct Example {
  std::string prompt;
  std::string completion;  // kPromptCompletion, kUnpairedPreference
  std::string chosen;      // kPreference
  std::string rejected;    // kPreference
  bool label = false;      // kUnpairedPreference: true = desirable
  std::string reference;   // kPromptOnly: optional reference answer
  int line = 0;            // 1-based line in the file
  // A conversational line: its messages by TRL field ("prompt", "completion", "chosen",
  // "rejected"). The text fields stay empty until the chat template renders them
  // (TokenizeExamples does, with the tokenizer's template).
  std::shared_ptr<const nlohmann::ordered_json> conversation;
};

struct DatasetReadOptions {
  // Stop listing bad lines after this many (the count of the rest is still given).
  size_t max_reported_errors = 20;
};

// Parses one line; `where` ("file:line") prefixes the error. Thread-safe.
absl::StatusOr<Example> ParseExampleLine(std::string_view line, DatasetFormat format,
                                         std::string_view where);

// Reads a whole file. NotFound if it cannot be opened; InvalidArgument naming every bad
// line ("path:7: missing field \"chosen\""), or if it holds no example. Thread-safe.
absl::StatusOr<std::vector<Example>> ReadJsonlDataset(const std::string& path, DatasetFormat format,
                                                      const DatasetReadOptions& options = {});

}  // namespace rlhf::jobs
