#pragma once
// What a server's transport accepts: plain or TLS, with or without client certificates
// (mTLS), and the rule that keeps defaults safe on a shared cluster: a server that
// listens on anything but loopback must authenticate its callers (a token or mTLS)
// unless it is started with --insecure-no-auth.

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "common/server/server_options.h"

namespace rlhf::server {

// True for 127.0.0.0/8, ::1 and "localhost" (host:port or [host]:port).
bool IsLoopbackAddress(const std::string& listen_address);

// The credentials for AddListeningPort. InvalidArgument naming the flag when a PEM file
// is unreadable, --tls-cert/--tls-key come apart, --tls-ca comes without them, or the
// listen address is not loopback and callers would go unauthenticated.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options);

}  // namespace rlhf::server
