#pragma once

// DataParallelGroup: the actor ranks of one data-parallel group, joined through a c10d
// process group (Gloo over TCP; DESIGN.md). Each rank trains on its shard of a minibatch;
// AllReduceMean averages the gradients so that every rank takes the identical step.
// Rank 0 also drives the others: it broadcasts each command (services/actor) and they
// follow.
//
// Rendezvous: rank 0 hosts a c10d TCPStore at `store_host:store_port`; every rank
// connects to it, then Gloo connects each pair of ranks directly.
//
// Every rank must make the same calls in the same order (collectives). Not thread-safe.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/train/gradient_all_reducer.h"

namespace rlhf::train {

struct DataParallelOptions {
  int64_t rank = 0;
  int64_t world_size = 1;
  // Rank 0's TCPStore; rank 0 listens there (port 0: any free port, see store_port()).
  std::string store_host = "127.0.0.1";
  int64_t store_port = 29500;
  // The address this rank's Gloo transport binds and announces; empty: this host's name.
  std::string gloo_host;
  // How long joining, and any one collective, may wait for the other ranks.
  std::chrono::milliseconds timeout = std::chrono::minutes(10);
};

class DataParallelGroup final : public GradientAllReducer {
 public:
  // Blocks until all world_size ranks have joined (or the timeout). InvalidArgument for a
  // bad rank/world size; Unavailable when the store or a peer cannot be reached.
  static absl::StatusOr<std::shared_ptr<DataParallelGroup>> Join(
      const DataParallelOptions& options);
  ~DataParallelGroup() override;

  int64_t rank() const override { return rank_; }
  int64_t world_size() const override { return world_size_; }
  // The TCPStore's port (the bound one when rank 0 asked for port 0).
  int64_t store_port() const { return store_port_; }

  absl::Status AllReduceMean(std::vector<torch::Tensor>& gradients) override;
  // Element-wise sum over ranks, in place.
  absl::Status AllReduceSum(torch::Tensor& tensor);
  // Rank 0's `bytes` to every rank (others' contents are replaced).
  absl::Status Broadcast(std::string* bytes);
  // Rank 0's values of each tensor to every rank, in place (same shapes on every rank).
  absl::Status BroadcastTensors(std::vector<torch::Tensor>& tensors);

 private:
  struct Impl;
  DataParallelGroup(std::unique_ptr<Impl> impl, int64_t rank, int64_t world_size,
                    int64_t store_port);
  std::unique_ptr<Impl> impl_;
  int64_t rank_;
  int64_t world_size_;
  int64_t store_port_;
};

}  // namespace rlhf::train
