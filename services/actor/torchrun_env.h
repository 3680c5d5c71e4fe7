#pragma once
// torchrun's environment for rlhf-actor's data-parallel group. torchrun (torch.distributed
// elastic, https://pytorch.org/docs/stable/elastic/run.html) starts every rank with RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT set; each supplies the matching flag
// (--rank, --world-size, the device index of a bare --device cuda, --group-store) when
// that flag is not on the command line. A flag and a variable that disagree are an error,
// not a silent preference: one of them is stale. Empty variables count as unset.
//
// rlhf-actor's rank 0 hosts the group's TCPStore at --group-store. torchrun's own agent
// already hosts one at MASTER_ADDR:MASTER_PORT unless the workers host it
// (TORCHELASTIC_USE_AGENT_STORE=False: `torchrun --rdzv-backend c10d` or `--standalone`
// with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1); the other case is refused with that hint.

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace rlhf::actor {

struct GroupSettings {
  int64_t rank = 0;
  int64_t world_size = 1;
  std::string store = "127.0.0.1:29500";  // --group-store: host:port of rank 0's TCPStore
  // The index of a bare --device cuda: LOCAL_RANK, else the rank.
  int64_t local_rank = 0;
};

// Which settings were typed on the command line (cli::FlagSet::Given).
struct GivenFlags {
  bool rank = false;
  bool world_size = false;
  bool store = false;
};

// The variable's value, or nullptr when unset (std::getenv; a map in tests).
using EnvLookup = std::function<const char*(const char* name)>;

// Fills `settings` (holding the flags' values) from the environment as above, then checks
// 0 <= rank < world size. InvalidArgument, one line naming the flag and/or variable, for a
// bad value, a flag that disagrees with its variable, or torchrun's agent store in the way.
absl::Status ApplyTorchrunEnv(const EnvLookup& env, const GivenFlags& given,
                              GroupSettings& settings);

}  // namespace rlhf::actor
