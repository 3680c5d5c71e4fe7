#include "common/train/padded_batch.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/model/limits.h"

namespace rlhf::train {

int64_t SequenceBatch::num_response_tokens() const {
  int64_t n = 0;
  for (const auto& response : responses) n += static_cast<int64_t>(response.size());
  return n;
}

namespace {

absl::Status CheckIds(const std::vector<int64_t>& ids, int64_t vocab_size, size_t row,
                      const char* part) {
  for (size_t j = 0; j < ids.size(); ++j) {
    if (ids[j] < 0 || ids[j] >= vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("sequence ", row, ": ", part, " token ", j,
                                                     " has id ", ids[j], " outside [0, ",
                                                     vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PaddedBatch> BuildPaddedBatch(const SequenceBatch& batch, int64_t vocab_size,
                                             int64_t pad_token_id) {
  if (batch.prompts.size() != batch.responses.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch has ", batch.prompts.size(), " prompts but ", batch.responses.size(), " responses"));
  }
  if (batch.prompts.empty()) return absl::InvalidArgumentError("batch has no sequences");
  const int64_t rows = batch.size();
  int64_t width = 2;
  for (int64_t i = 0; i < rows; ++i) {
    if (batch.prompts[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", i,
                       ": prompt is empty (at least one token is needed to "
                       "score the first response token)"));
    }
    if (auto s = CheckIds(batch.prompts[i], vocab_size, i, "prompt"); !s.ok()) return s;
    if (auto s = CheckIds(batch.responses[i], vocab_size, i, "response"); !s.ok()) return s;
    width = std::max<int64_t>(width, batch.prompts[i].size() + batch.responses[i].size());
  }
  if (auto s = model::CheckPaddedSize(rows, width); !s.ok()) return s;
  PaddedBatch out;
  std::vector<int64_t> ids(rows * width, pad_token_id);
  std::vector<int64_t> attention(rows * width, 0);
  std::vector<float> response_mask(rows * (width - 1), 0.0f);
  for (int64_t i = 0; i < rows; ++i) {
    const auto& prompt = batch.prompts[i];
    const auto& response = batch.responses[i];
    const int64_t p = prompt.size();
    const int64_t r = response.size();
    std::copy(prompt.begin(), prompt.end(), ids.begin() + i * width);
    std::copy(response.begin(), response.end(), ids.begin() + i * width + p);
    std::fill_n(attention.begin() + i * width, p + r, 1);
    std::fill_n(response_mask.begin() + i * (width - 1) + p - 1, r, 1.0f);
    out.prompt_lengths.push_back(p);
    out.response_lengths.push_back(r);
    out.num_response_tokens += r;
  }
  out.input_ids = torch::tensor(ids, torch::kInt64).view({rows, width});
  out.attention_mask = torch::tensor(attention, torch::kInt64).view({rows, width});
  out.response_mask = torch::tensor(response_mask, torch::kFloat32).view({rows, width - 1});
  return out;
}

PaddedBatch SelectRows(const PaddedBatch& batch, const std::vector<int64_t>& rows) {
  PaddedBatch out;
  int64_t width = 2;
  for (int64_t row : rows) {
    out.prompt_lengths.push_back(batch.prompt_lengths[row]);
    out.response_lengths.push_back(batch.response_lengths[row]);
    out.num_response_tokens += batch.response_lengths[row];
    width = std::max(width, batch.prompt_lengths[row] + batch.response_lengths[row]);
  }
  torch::Tensor index = torch::tensor(rows, torch::kInt64);
  out.input_ids = batch.input_ids.index_select(0, index).slice(1, 0, width);
  out.attention_mask = batch.attention_mask.index_select(0, index).slice(1, 0, width);
  out.response_mask = batch.response_mask.index_select(0, index).slice(1, 0, width - 1);
  return out;
}

torch::Tensor GatherResponseTokens(const torch::Tensor& grid, const PaddedBatch& batch) {
  std::vector<torch::Tensor> pieces;
  pieces.reserve(batch.prompt_lengths.size());
  for (size_t i = 0; i < batch.prompt_lengths.size(); ++i) {
    const int64_t start = batch.prompt_lengths[i] - 1;
    pieces.push_back(grid[i].slice(0, start, start + batch.response_lengths[i]));
  }
  return torch::cat(pieces);
}

absl::StatusOr<torch::Tensor> ScatterResponseTokens(const torch::Tensor& flat,
                                                    const PaddedBatch& batch, const char* what) {
  if (!flat.defined()) return absl::InvalidArgumentError(absl::StrCat(what, " is missing"));
  if (flat.dim() != 1 || flat.numel() != batch.num_response_tokens) {
    std::string shape = "[";
    for (int64_t d = 0; d < flat.dim(); ++d) absl::StrAppend(&shape, d ? ", " : "", flat.size(d));
    return absl::InvalidArgumentError(
        absl::StrCat(what, " has shape ", shape, "] but the batch has ", batch.num_response_tokens,
                     " response tokens (one value per response token, flat)"));
  }
  if (!flat.is_floating_point()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " must be floating point"));
  }
  torch::Tensor values = flat.to(torch::kFloat32).contiguous();
  torch::Tensor grid = torch::zeros(batch.response_mask.sizes(), torch::kFloat32);
  int64_t offset = 0;
  for (size_t i = 0; i < batch.prompt_lengths.size(); ++i) {
    const int64_t start = batch.prompt_lengths[i] - 1;
    const int64_t n = batch.response_lengths[i];
    grid[i].slice(0, start, start + n).copy_(values.slice(0, offset, offset + n));
    offset += n;
  }
  return grid;
}

}  // namespace rlhf::train
