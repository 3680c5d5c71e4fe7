#pragma once
// ServerOptions: everything a service binary's gRPC server and metrics endpoint need,
// with defaults; main.cc fills it from flags (STYLE.md: options structs, as Triton's
// SocketOptions). Plain data; not thread-safe to mutate while a server runs.

#include <chrono>
#include <cstdint>
#include <string>

namespace rlhf::server {

struct ServerOptions {
  // host:port for gRPC. Port 0 picks a free port (ServerRunner::port() reports it).
  std::string listen_address = "127.0.0.1:0";
  // Largest request or response message. gRPC's default receive limit is 4 MiB; weight
  // chunks are up to ~4 MiB plus framing and generations can be large, hence 64 MiB.
  int64_t max_message_bytes = int64_t{64} << 20;
  // host:port for Prometheus' HTTP /metrics; empty disables the endpoint.
  std::string metrics_address = "127.0.0.1:0";
  // The bounded work pool that runs handlers' heavy work (forwards, generation).
  int worker_threads = 2;
  // Work items that may wait for a worker; one more answers RESOURCE_EXHAUSTED.
  int queue_capacity = 64;
  // On shutdown, in-flight calls get this long to finish before they are cancelled.
  std::chrono::milliseconds drain_timeout{10000};

  // Security (common/server/server_credentials.h). Empty paths: off.
  // Callers must present one of this file's tokens (common/server/caller_auth.h).
  std::string auth_token_file;
  // PEM certificate chain and key: serve TLS. With tls_client_ca_file, also require a
  // client certificate signed by that CA (mTLS).
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  // Serve a non-loopback address although callers are neither token- nor mTLS-checked.
  bool insecure_no_auth = false;
};

}  // namespace rlhf::server
