#pragma once

// DataParallelGroup: the actor ranks of one data-parallel group, joined through a c10d
// process group (Gloo over TCP on the CPU, NCCL on CUDA devices; DESIGN.md). Each rank trains on
// its shard of a minibatch; AllReduceMean averages the gradients so that every rank takes the
// identical step. Rank 0 also drives the others: it broadcasts each command (services/actor) and
// they follow.
//
// Rendezvous: rank 0 hosts a c10d TCPStore at `store_host:store_port`; every rank
// connects to it, then Gloo connects each pair of ranks directly.
//
// Commands go through the store, not through a collective: a follower waits for the next
// one for as long as it takes (an idle group never times out), and notices there when
// rank 0 re-formed the group.
//
// Faults: a collective that fails (a rank died) marks the group broken. A rank that
// starts after the group formed (a restarted follower), or whose collective failed, asks
// rank 0 to re-form it. Rank 0 re-forms before its next command (NeedsReform, Reform):
// a new generation of the process group, under its own store prefix, that every rank
// joins; the surviving ranks keep their state and are never restarted.
//
// Every rank must make the same calls in the same order (collectives). Not thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
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
  // The ranks' training device: CUDA ranks use NCCL (a CUDA build), CPU ranks Gloo.
  torch::Device device = torch::kCPU;
  // Gradients are all-reduced in buckets of about this many bytes (fp32), like DDP's
  // bucket_cap_mb; a larger gradient is a bucket of its own.
  int64_t bucket_bytes = int64_t{25} << 20;
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

  // A follower that joined after rank 0's first group formed (a restarted rank): it gets
  // the training state through rank 0's first command, not at start-up.
  bool joined_late() const { return joined_late_; }

  // Rank 0: whether the group must be re-formed before the next command (a collective
  // failed, or a restarted rank asked to rejoin). Unavailable when the store is gone.
  absl::StatusOr<bool> NeedsReform();
  // Rank 0: forms the next generation of the group; every rank must join within the
  // timeout (Unavailable naming the wait otherwise, and the group stays broken).
  absl::Status Reform();

  // Rank 0: `bytes` becomes the followers' next command.
  absl::Status PublishCommand(const std::string& bytes);
  // Ranks > 0: waits without a time limit for rank 0's next command, joining a new
  // generation of the group first when rank 0 formed one (and asking for one when this
  // rank's last collective failed). Unavailable when rank 0's store is gone.
  absl::StatusOr<std::string> NextCommand();

  // In buckets of options.bucket_bytes, the next one packed while one is in flight.
  absl::Status AllReduceMean(std::vector<torch::Tensor>& gradients) override;
  // Element-wise sum over ranks, in place.
  absl::Status AllReduceSum(torch::Tensor& tensor);
  // Rank 0's `bytes` to every rank (others' contents are replaced).
  absl::Status Broadcast(std::string* bytes);
  // Rank 0's values of each tensor to every rank, in place (same shapes on every rank).
  absl::Status BroadcastTensors(std::vector<torch::Tensor>& tensors);

 private:
  struct Impl;
  explicit DataParallelGroup(std::unique_ptr<Impl> impl);
  // Joins generation `generation` of the process group (blocks until every rank has).
  absl::Status Form(int64_t generation);
  // Runs one collective; a failure marks the group broken and is Aborted.
  absl::Status Collective(const char* what, const std::function<void()>& run);

  std::unique_ptr<Impl> impl_;
  int64_t rank_;
  int64_t world_size_;
  int64_t store_port_ = 0;
  bool joined_late_ = false;
  bool broken_ = false;
  int64_t generation_ = 0;
  int64_t next_command_ = 0;  // sequence number of the next command in this generation
  int64_t rejoin_requests_seen_ = 0;
};

}  // namespace rlhf::train
