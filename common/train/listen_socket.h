#pragma once

// A TCP socket bound to one address and listening, for rank 0's c10d TCPStore to take
// over (TCPStoreOptions::masterListenFd). The TCPStore on its own binds every interface;
// a store that should be reachable only where it was asked to be (a loopback or a
// cluster-internal address) needs the bind done here.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace rlhf::train {

// The listening socket's fd (the caller owns it, or hands it over). `host` is a name or
// a numeric address, resolved for a passive IPv4/IPv6 socket; port 0 picks a free port.
// Unavailable naming host:port and the system's reason when it cannot be bound.
absl::StatusOr<int> ListenOn(const std::string& host, int64_t port);

}  // namespace rlhf::train
