#pragma once
// WeightAssembler: rebuilds whole tensors from a LoadWeights stream of WeightChunks
// (weights.proto: a tensor's chunks arrive in order, the first carries name, dtype and
// shape) and validates them against the model's parameters before anything is swapped
// in: every name known and present once, shapes equal, dtype F32/F16/BF16, chunks
// contiguous and complete. Shapes are checked on a tensor's first chunk, so a bad stream
// never makes us allocate more than the model's own size. Not thread-safe (one stream).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "rlhf/v1/weights.pb.h"

namespace rlhf::rollout {

struct AssembledWeights {
  std::map<std::string, torch::Tensor> tensors;  // CPU, in the stream's dtype
  int64_t version = 0;                           // the stream's version (0 when unset)
  int64_t bytes = 0;
};

class WeightAssembler {
 public:
  // `expected`: parameter name -> shape, as the serving model has them. Tensors whose
  // name starts with one of `ignored_prefixes` (a policy's value head) are read and
  // dropped.
  explicit WeightAssembler(std::map<std::string, std::vector<int64_t>> expected,
                           std::vector<std::string> ignored_prefixes = {"v_head."});

  // InvalidArgument naming the tensor and what is wrong with the chunk.
  absl::Status Add(const v1::WeightChunk& chunk);

  // After the last chunk: InvalidArgument when a tensor is unfinished or missing.
  absl::StatusOr<AssembledWeights> Finish();

 private:
  struct InProgress {
    std::string name;
    torch::Tensor tensor;  // empty when ignored
    int64_t total_bytes = 0;
    int64_t received_bytes = 0;
  };
  absl::Status Begin(const v1::WeightChunk& chunk);

  std::map<std::string, std::vector<int64_t>> expected_;
  std::vector<std::string> ignored_prefixes_;
  std::optional<InProgress> current_;
  std::optional<int64_t> version_;
  AssembledWeights done_;
  std::map<std::string, bool> seen_;
};

}  // namespace rlhf::rollout
