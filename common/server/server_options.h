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
};

}  // namespace rlhf::server
