#pragma once
// CallerAuth: the bearer-token check a server applies to every call of its own services
// (health and reflection stay open). Callers send gRPC metadata
// "authorization: Bearer <token>"; a missing or wrong token is UNAUTHENTICATED and the
// call does no work. The token file holds one token per line, any of which is accepted,
// and is re-read when it changes (common/rpc/token_file.h), so a token is rotated
// without a restart: add the new line, move the clients, remove the old line. Tokens are
// compared in constant time and never logged. Default-constructed: no token, every
// caller is accepted (loopback, `rlhf local`, or a server whose transport already
// authenticates callers with mTLS). Thread-safe.

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "common/rpc/token_file.h"

namespace rlhf::server {

class CallerAuth {
 public:
  CallerAuth() = default;

  // Reads `path` (--auth-token-file). InvalidArgument naming the file when it cannot be
  // read or holds no token (never its contents).
  static absl::StatusOr<CallerAuth> FromFile(const std::string& path);

  bool enabled() const { return file_ != nullptr; }

  // OK, or UNAUTHENTICATED saying what is missing (never which token was expected).
  grpc::Status Check(const grpc::ServerContextBase& context) const;

 private:
  std::shared_ptr<rpc::TokenFile> file_;
};

// True when a == b, in time that depends only on the lengths.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

}  // namespace rlhf::server
