#pragma once
// Reading the PEM files TLS is configured with (certificates, keys, CA bundles), for the
// server and client credentials alike: a missing or unreadable file, or one that is not
// PEM, is an InvalidArgument naming the flag and the path (never the contents).

#include <string>

#include "absl/status/statusor.h"

namespace rlhf::rpc {

// The file's text. `flag` names where the path came from, e.g. "--tls-cert".
absl::StatusOr<std::string> ReadPemFile(const std::string& flag, const std::string& path);

}  // namespace rlhf::rpc
