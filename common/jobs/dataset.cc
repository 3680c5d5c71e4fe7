#include "common/jobs/dataset.h"

#include <fstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/jobs/algorithms.h"
#include "common/jobs/conversation.h"

namespace rlhf::jobs {
namespace {

absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

absl::Status LineError(std::string_view where, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(Absl(where), ": ", Absl(why)));
}

// Reads a required (or optional) string field into *out.
absl::Status ReadString(const nlohmann::ordered_json& object, const char* key, bool required,
                        std::string_view where, std::string* out) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (!required) return absl::OkStatus();
    return LineError(where, absl::StrCat("missing field \"", key, "\""));
  }
  if (it->is_array()) {
    return LineError(where, absl::StrCat("field \"", key,
                                         "\" is a list of messages but \"prompt\" is a string: "
                                         "a conversational line has every text field as a list"));
  }
  if (!it->is_string()) {
    return LineError(where,
                     absl::StrCat("field \"", key, "\" must be a string, not ", it->type_name()));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadLabel(const nlohmann::ordered_json& object, std::string_view where, bool* out) {
  auto it = object.find("label");
  if (it == object.end() || it->is_null()) return LineError(where, "missing field \"label\"");
  if (!it->is_boolean()) {
    return LineError(where,
                     absl::StrCat("field \"label\" must be a boolean, not ", it->type_name()));
  }
  *out = it->get<bool>();
  return absl::OkStatus();
}

}  // namespace

std::string_view DatasetFormatName(DatasetFormat format) {
  switch (format) {
    case DatasetFormat::kPromptOnly:
      return "prompt";
    case DatasetFormat::kPromptCompletion:
      return "prompt+completion";
    case DatasetFormat::kPreference:
      return "prompt+chosen+rejected";
    case DatasetFormat::kUnpairedPreference:
      return "prompt+completion+label";
  }
  return "unknown";
}

absl::StatusOr<DatasetFormat> DatasetFormatForAlgorithm(std::string_view algorithm) {
  if (const AlgorithmFacts* facts = FindAlgorithm(algorithm)) return facts->format;
  return absl::InvalidArgumentError(absl::StrCat("unknown algorithm \"", Absl(algorithm), "\""));
}

absl::StatusOr<Example> ParseExampleLine(std::string_view line, DatasetFormat format,
                                         std::string_view where) {
  nlohmann::ordered_json object;
  try {
    object = nlohmann::ordered_json::parse(line.begin(), line.end());
  } catch (const nlohmann::json::parse_error& e) {
    // nlohmann's message ends with "; last read: '<the line's bytes>'": cut it, so an
    // error never echoes a file's contents (a job naming a file that is not a dataset).
    std::string why = e.what();
    if (const size_t cut = why.find("; last read"); cut != std::string::npos) why.resize(cut);
    return LineError(where, absl::StrCat("not JSON: ", why));
  }
  if (!object.is_object()) {
    return LineError(where, absl::StrCat("expected a JSON object, got ", object.type_name()));
  }
  Example example;
  if (IsConversational(object)) {
    auto conversation = ParseConversation(object, format, where);
    if (!conversation.ok()) return conversation.status();
    example.conversation = *std::move(conversation);
    absl::Status status = ReadString(object, "reference", false, where, &example.reference);
    if (status.ok() && format == DatasetFormat::kUnpairedPreference) {
      status = ReadLabel(object, where, &example.label);
    }
    if (!status.ok()) return status;
    return example;
  }
  absl::Status status = ReadString(object, "prompt", true, where, &example.prompt);
  if (!status.ok()) return status;
  if (example.prompt.empty()) return LineError(where, "empty prompt");
  switch (format) {
    case DatasetFormat::kPromptOnly:
      status = ReadString(object, "reference", false, where, &example.reference);
      break;
    case DatasetFormat::kPromptCompletion:
      status = ReadString(object, "completion", true, where, &example.completion);
      break;
    case DatasetFormat::kPreference:
      status = ReadString(object, "chosen", true, where, &example.chosen);
      if (status.ok()) status = ReadString(object, "rejected", true, where, &example.rejected);
      break;
    case DatasetFormat::kUnpairedPreference: {
      status = ReadString(object, "completion", true, where, &example.completion);
      if (status.ok()) status = ReadLabel(object, where, &example.label);
      break;
    }
  }
  if (!status.ok()) return status;
  return example;
}

absl::StatusOr<std::vector<Example>> ReadJsonlDataset(const std::string& path, DatasetFormat format,
                                                      const DatasetReadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open dataset ", path));
  std::vector<Example> examples;
  std::vector<std::string> errors;
  size_t unreported = 0;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    absl::StatusOr<Example> example =
        ParseExampleLine(line, format, absl::StrCat(path, ":", line_number));
    if (example.ok()) {
      example->line = line_number;
      examples.push_back(*std::move(example));
    } else if (errors.size() < options.max_reported_errors) {
      errors.push_back(std::string(example.status().message()));
    } else {
      ++unreported;
    }
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading dataset ", path));
  if (unreported > 0) errors.push_back(absl::StrCat("... and ", unreported, " more bad lines"));
  if (!errors.empty()) return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  if (examples.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path,
                                                   ": no examples (expected JSON lines in the ",
                                                   Absl(DatasetFormatName(format)), " format)"));
  }
  return examples;
}

}  // namespace rlhf::jobs
