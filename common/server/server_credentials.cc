#include "common/server/server_credentials.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "common/rpc/pem_file.h"

namespace rlhf::server {

bool IsLoopbackAddress(const std::string& listen_address) {
  const size_t colon = listen_address.rfind(':');
  std::string host = colon == std::string::npos ? listen_address : listen_address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const ServerOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  const bool tls = !options.tls_cert_file.empty();
  if (!tls && !options.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError("--tls-ca (mTLS) needs --tls-cert and --tls-key");
  }
  const bool authenticated =
      !options.auth_token_file.empty() || !options.tls_client_ca_file.empty();
  if (!authenticated && !options.insecure_no_auth && !IsLoopbackAddress(options.listen_address)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to serve ", options.listen_address,
        " (not loopback) without caller authentication: give --auth-token-file (and "
        "--tls-cert/--tls-key) or --tls-ca for mTLS, or --insecure-no-auth to accept anyone"));
  }
  if (!tls) return grpc::InsecureServerCredentials();

  auto cert = rpc::ReadPemFile("--tls-cert", options.tls_cert_file);
  if (!cert.ok()) return cert.status();
  auto key = rpc::ReadPemFile("--tls-key", options.tls_key_file);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!options.tls_client_ca_file.empty()) {
    auto ca = rpc::ReadPemFile("--tls-ca", options.tls_client_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace rlhf::server
