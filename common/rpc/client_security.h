#pragma once
// How a client reaches a server that authenticates its callers: the bearer token it
// sends on every call ("authorization: Bearer <token>", via a client interceptor, so no
// call site can forget it) and the TLS it speaks (the server's CA, and a client
// certificate for mTLS). MakeChannel is the one place a channel to a remote service is
// made (the rlhf CLI, the coordinator's clients of the model services, tests).
//
// ClientSecurityFlags registers the flags for it, with environment defaults:
//   --token-file  (RLHF_TOKEN_FILE)  the token's file (its first non-empty line; re-read
//                                    when it changes, so a rotated token needs no restart)
//   --tls-ca      (RLHF_TLS_CA)      CA bundle that signed the server's certificate: TLS
//   --tls-cert / --tls-key (RLHF_TLS_CERT / RLHF_TLS_KEY)  client certificate for mTLS
//   --tls-server-name (RLHF_TLS_SERVER_NAME)  name to verify instead of the address' host
// The coordinator registers a second set with the prefix "service-" for its calls to
// the model services (--service-token-file, RLHF_SERVICE_TOKEN_FILE, ...).

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "common/cli/flags.h"
#include "common/rpc/token_file.h"

namespace rlhf::rpc {

struct ClientSecurity {
  // The bearer token: the first line of token_file (re-read when it changes), else
  // `token`; neither: no authorization metadata.
  std::shared_ptr<TokenFile> token_file;
  std::string token;
  bool tls = false;
  std::string ca_pem, cert_pem, key_pem;  // PEM text; cert/key only for mTLS
  std::string server_name;                // empty: the host of the address
};

// A channel to `address` with `security` applied to every call.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address,
                                           const ClientSecurity& security,
                                           const grpc::ChannelArguments& args = {});

struct ClientSecurityFlags {
  std::string token_file, tls_ca, tls_cert, tls_key, tls_server_name;

  // `prefix` goes before every flag name ("service-") and, upper-cased, after "RLHF_" in
  // every environment variable.
  void Register(cli::FlagSet& flags, const std::string& prefix = "");

  // Reads the files. InvalidArgument naming the flag and path when one is unreadable,
  // not PEM, empty (the token), or when --tls-cert and --tls-key are not given together
  // or without --tls-ca.
  absl::StatusOr<ClientSecurity> Load() const;

 private:
  std::string prefix_;
};

}  // namespace rlhf::rpc
