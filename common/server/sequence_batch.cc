#include "common/server/sequence_batch.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/model/limits.h"
#include "common/rpc/tensor_codec.h"

namespace rlhf::server {
namespace {

absl::Status CheckIds(const std::vector<int64_t>& ids, int64_t vocab_size, const char* what,
                      size_t index) {
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " ", index, ": token id ", id, " is outside the vocabulary [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PaddedSequences> PadSequenceBatch(const v1::SequenceBatch& batch,
                                                 const model::ModelConfig& config) {
  if (auto s = rpc::CheckPaddedBatchSize(batch); !s.ok()) return s;
  auto prompts = rpc::TokensFromProto(batch.prompts());
  if (!prompts.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("batch.prompts: ", prompts.status().message()));
  }
  auto responses = rpc::TokensFromProto(batch.responses());
  if (!responses.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch.responses: ", responses.status().message()));
  }
  if (prompts->empty()) return absl::InvalidArgumentError("batch has no sequences");
  if (prompts->size() != responses->size()) {
    return absl::InvalidArgumentError(absl::StrCat("batch has ", prompts->size(), " prompts but ",
                                                   responses->size(), " responses"));
  }
  PaddedSequences out;
  int64_t max_length = 0;
  for (size_t i = 0; i < prompts->size(); ++i) {
    const auto& prompt = (*prompts)[i];
    const auto& response = (*responses)[i];
    if (prompt.empty()) return absl::InvalidArgumentError(absl::StrCat("prompt ", i, " is empty"));
    if (auto s = CheckIds(prompt, config.vocab_size, "prompt", i); !s.ok()) return s;
    if (auto s = CheckIds(response, config.vocab_size, "response", i); !s.ok()) return s;
    const int64_t length = static_cast<int64_t>(prompt.size() + response.size());
    if (config.max_position_embeddings > 0 && length > config.max_position_embeddings) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", i, " has ", length,
                                                     " tokens; the model's context is ",
                                                     config.max_position_embeddings));
    }
    max_length = std::max(max_length, length);
    out.prompt_lengths.push_back(static_cast<int64_t>(prompt.size()));
    out.response_lengths.push_back(static_cast<int64_t>(response.size()));
    out.total_response_tokens += static_cast<int64_t>(response.size());
  }
  const int64_t rows = static_cast<int64_t>(prompts->size());
  if (auto s = model::CheckPaddedSize(rows, max_length); !s.ok()) return s;
  out.input_ids = torch::zeros({rows, max_length}, torch::kInt64);
  out.attention_mask = torch::zeros({rows, max_length}, torch::kInt64);
  auto ids = out.input_ids.accessor<int64_t, 2>();
  auto mask = out.attention_mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < rows; ++b) {
    int64_t t = 0;
    for (int64_t id : (*prompts)[b]) ids[b][t] = id, mask[b][t++] = 1;
    for (int64_t id : (*responses)[b]) ids[b][t] = id, mask[b][t++] = 1;
  }
  return out;
}

}  // namespace rlhf::server
