#include "common/tokenizer/post_processor.h"

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "common/tokenizer/cat.h"

namespace rlhf::tokenizer {
namespace {

// processors/template.rs for the single-sequence template.
class TemplateProcessor final : public PostProcessor {
 public:
  TemplateProcessor(std::vector<int64_t> prefix, std::vector<int64_t> suffix)
      : prefix_(std::move(prefix)), suffix_(std::move(suffix)) {}
  void Process(std::vector<int64_t>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    ids.insert(ids.begin(), prefix_.begin(), prefix_.end());
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  }
  std::vector<int64_t> SpecialIds() const override {
    std::vector<int64_t> ids = prefix_;
    ids.insert(ids.end(), suffix_.begin(), suffix_.end());
    return ids;
  }

 private:
  std::vector<int64_t> prefix_;
  std::vector<int64_t> suffix_;
};

// processors/byte_level.rs only trims offsets, which this runtime does not produce.
class NoOpProcessor final : public PostProcessor {
 public:
  void Process(std::vector<int64_t>&, bool) const override {}
};

class SequenceProcessor final : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  void Process(std::vector<int64_t>& ids, bool add_special_tokens) const override {
    for (const auto& step : steps_) step->Process(ids, add_special_tokens);
  }
  std::vector<int64_t> SpecialIds() const override {
    std::vector<int64_t> ids;
    for (const auto& step : steps_) {
      std::vector<int64_t> more = step->SpecialIds();
      ids.insert(ids.end(), more.begin(), more.end());
    }
    return ids;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// The "single" template: [{"SpecialToken": {"id": "<s>", ...}}, {"Sequence": {"id": "A"}}]
// with each special token's ids looked up in "special_tokens".
absl::StatusOr<std::unique_ptr<PostProcessor>> ParseTemplate(const Json& json,
                                                             std::string_view path) {
  const std::string single_path = JsonPath(path, "single");
  const Json* single = FindMember(json, "single");
  if (single == nullptr || !single->is_array()) {
    return absl::InvalidArgumentError(Cat(single_path, ": expected an array"));
  }
  const Json* special_tokens = FindMember(json, "special_tokens");
  std::vector<int64_t> prefix, suffix;
  bool seen_sequence = false;
  for (size_t i = 0; i < single->size(); ++i) {
    const Json& piece = (*single)[i];
    const std::string piece_path = JsonPath(single_path, i);
    if (const Json* sequence = FindMember(piece, "Sequence")) {
      absl::StatusOr<std::string> id = GetString(*sequence, "id", JsonPath(piece_path, "Sequence"));
      if (!id.ok()) return id.status();
      if (*id != "A" || seen_sequence) {
        return absl::UnimplementedError(
            Cat(piece_path, ": only one $A sequence is supported in \"single\""));
      }
      seen_sequence = true;
      continue;
    }
    const Json* special = FindMember(piece, "SpecialToken");
    if (special == nullptr) {
      return absl::InvalidArgumentError(
          Cat(piece_path, ": expected a Sequence or SpecialToken item"));
    }
    absl::StatusOr<std::string> name =
        GetString(*special, "id", JsonPath(piece_path, "SpecialToken"));
    if (!name.ok()) return name.status();
    const Json* entry = special_tokens == nullptr ? nullptr : FindMember(*special_tokens, *name);
    const Json* ids = entry == nullptr ? nullptr : FindMember(*entry, "ids");
    const std::string ids_path = JsonPath(JsonPath(JsonPath(path, "special_tokens"), *name), "ids");
    if (ids == nullptr || !ids->is_array()) {
      return absl::InvalidArgumentError(
          Cat(piece_path, ": special token \"", *name, "\" has no ", ids_path));
    }
    for (size_t k = 0; k < ids->size(); ++k) {
      const Json& id = (*ids)[k];
      if (!id.is_number_integer() || id.get<int64_t>() < 0) {
        return absl::InvalidArgumentError(
            Cat(JsonPath(ids_path, k), ": expected a non-negative integer id"));
      }
      (seen_sequence ? suffix : prefix).push_back(id.get<int64_t>());
    }
  }
  return MakeTemplate(std::move(prefix), std::move(suffix));
}

}  // namespace

std::unique_ptr<PostProcessor> MakeTemplate(std::vector<int64_t> prefix,
                                            std::vector<int64_t> suffix) {
  return std::make_unique<TemplateProcessor>(std::move(prefix), std::move(suffix));
}

absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const Json& json,
                                                                  std::string_view path,
                                                                  int depth) {
  if (json.is_null()) return nullptr;
  if (depth > kMaxConfigDepth) {
    return absl::InvalidArgumentError(Cat(path, ": post-processors nested too deeply"));
  }
  absl::StatusOr<std::string> type = GetType(json, path);
  if (!type.ok()) return type.status();
  if (*type == "TemplateProcessing") return ParseTemplate(json, path);
  if (*type == "ByteLevel") return std::make_unique<NoOpProcessor>();
  if (*type == "Sequence") {
    const Json* list = FindMember(json, "processors");
    const std::string list_path = JsonPath(path, "processors");
    if (list == nullptr || !list->is_array()) {
      return absl::InvalidArgumentError(Cat(list_path, ": expected an array"));
    }
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      absl::StatusOr<std::unique_ptr<PostProcessor>> step =
          ParsePostProcessor((*list)[i], JsonPath(list_path, i), depth + 1);
      if (!step.ok()) return step.status();
      if (*step != nullptr) steps.push_back(*std::move(step));
    }
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  return absl::UnimplementedError(
      Cat(path, ": post-processor type \"", *type, "\" is not supported"));
}

}  // namespace rlhf::tokenizer
