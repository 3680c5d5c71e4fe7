#include "common/train/batch_shard.h"

#include "absl/strings/str_cat.h"

namespace rlhf::train {
namespace {

struct Range {
  int64_t begin, end;
};

absl::StatusOr<Range> RowRange(int64_t rows, int64_t rank, int64_t world) {
  if (world < 1 || rank < 0 || rank >= world) {
    return absl::InvalidArgumentError(absl::StrCat("bad rank ", rank, " of ", world));
  }
  if (rows % world != 0) {
    return absl::InvalidArgumentError(absl::StrCat("a batch of ", rows,
                                                   " rows cannot be split evenly over ", world,
                                                   " data-parallel actor ranks"));
  }
  const int64_t share = rows / world;
  return Range{rank * share, (rank + 1) * share};
}

template <typename T>
std::vector<T> Slice(const std::vector<T>& v, Range r) {
  return std::vector<T>(v.begin() + r.begin, v.begin() + r.end);
}

SequenceBatch SliceBatch(const SequenceBatch& batch, Range r) {
  return SequenceBatch{Slice(batch.prompts, r), Slice(batch.responses, r)};
}

// Rows of a per-row tensor [B]; undefined stays undefined.
absl::StatusOr<torch::Tensor> SliceRows(const torch::Tensor& t, int64_t rows, Range r,
                                        const char* name) {
  if (!t.defined()) return t;
  if (t.dim() != 1 || t.size(0) != rows) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " has ", t.numel(), " values; expected one per row (", rows, ")"));
  }
  return t.slice(0, r.begin, r.end);
}

// The response tokens of rows r in a token-flat tensor [N].
absl::StatusOr<torch::Tensor> SliceTokens(const torch::Tensor& t, const SequenceBatch& batch,
                                          Range r, const char* name) {
  if (!t.defined()) return t;
  int64_t begin = 0, end = 0, total = 0;
  for (int64_t i = 0; i < static_cast<int64_t>(batch.responses.size()); ++i) {
    const int64_t n = static_cast<int64_t>(batch.responses[i].size());
    if (i < r.begin) begin += n;
    if (i < r.end) end += n;
    total += n;
  }
  if (t.dim() != 1 || t.size(0) != total) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " has ", t.numel(), " values for ", total, " response tokens"));
  }
  return t.slice(0, begin, end);
}

}  // namespace

absl::StatusOr<SequenceBatch> ShardRows(const SequenceBatch& batch, int64_t rank, int64_t world) {
  auto r = RowRange(static_cast<int64_t>(batch.prompts.size()), rank, world);
  if (!r.ok()) return r.status();
  return SliceBatch(batch, *r);
}

absl::StatusOr<PolicyGradientInputs> ShardRows(const PolicyGradientInputs& inputs, int64_t rank,
                                               int64_t world) {
  auto r = RowRange(static_cast<int64_t>(inputs.batch.prompts.size()), rank, world);
  if (!r.ok()) return r.status();
  PolicyGradientInputs out;
  out.batch = SliceBatch(inputs.batch, *r);
  struct Field {
    const torch::Tensor& in;
    torch::Tensor* out;
    const char* name;
  };
  for (const Field& f :
       {Field{inputs.old_logprobs, &out.old_logprobs, "old_logprobs"},
        Field{inputs.advantages, &out.advantages, "advantages"},
        Field{inputs.returns, &out.returns, "returns"},
        Field{inputs.old_values, &out.old_values, "old_values"},
        Field{inputs.ref_logprobs, &out.ref_logprobs, "ref_logprobs"},
        Field{inputs.rollout_logprobs, &out.rollout_logprobs, "rollout_logprobs"}}) {
    auto sliced = SliceTokens(f.in, inputs.batch, *r, f.name);
    if (!sliced.ok()) return sliced.status();
    *f.out = *sliced;
  }
  return out;
}

absl::StatusOr<PreferenceInputs> ShardRows(const PreferenceInputs& inputs, int64_t rank,
                                           int64_t world) {
  const int64_t rows = static_cast<int64_t>(inputs.chosen.prompts.size());
  auto r = RowRange(rows, rank, world);
  if (!r.ok()) return r.status();
  if (static_cast<int64_t>(inputs.rejected.prompts.size()) != rows) {
    return absl::InvalidArgumentError(absl::StrCat("preference batch has ", rows, " chosen and ",
                                                   inputs.rejected.prompts.size(),
                                                   " rejected rows"));
  }
  PreferenceInputs out;
  out.chosen = SliceBatch(inputs.chosen, *r);
  out.rejected = SliceBatch(inputs.rejected, *r);
  auto chosen = SliceRows(inputs.ref_chosen_logprobs, rows, *r, "ref_chosen_logprobs");
  if (!chosen.ok()) return chosen.status();
  auto rejected = SliceRows(inputs.ref_rejected_logprobs, rows, *r, "ref_rejected_logprobs");
  if (!rejected.ok()) return rejected.status();
  out.ref_chosen_logprobs = *chosen;
  out.ref_rejected_logprobs = *rejected;
  return out;
}

absl::StatusOr<UnpairedInputs> ShardRows(const UnpairedInputs& inputs, int64_t rank,
                                         int64_t world) {
  const int64_t rows = static_cast<int64_t>(inputs.batch.prompts.size());
  auto r = RowRange(rows, rank, world);
  if (!r.ok()) return r.status();
  if (static_cast<int64_t>(inputs.kl_batch.prompts.size()) != rows ||
      static_cast<int64_t>(inputs.desirable.size()) != rows) {
    return absl::InvalidArgumentError(absl::StrCat("unpaired batch has ", rows, " rows, ",
                                                   inputs.kl_batch.prompts.size(), " kl rows and ",
                                                   inputs.desirable.size(), " labels"));
  }
  UnpairedInputs out;
  out.batch = SliceBatch(inputs.batch, *r);
  out.kl_batch = SliceBatch(inputs.kl_batch, *r);
  out.desirable = Slice(inputs.desirable, *r);
  auto ref = SliceRows(inputs.ref_logprobs, rows, *r, "ref_logprobs");
  if (!ref.ok()) return ref.status();
  auto ref_kl = SliceRows(inputs.ref_kl_logprobs, rows, *r, "ref_kl_logprobs");
  if (!ref_kl.ok()) return ref_kl.status();
  out.ref_logprobs = *ref;
  out.ref_kl_logprobs = *ref_kl;
  return out;
}

}  // namespace rlhf::train
