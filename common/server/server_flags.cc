#include "common/server/server_flags.h"

namespace rlhf::server {
using cli::EnvOr;

void ServerFlags::Register(cli::FlagSet& flags) {
  const ServerOptions defaults;
  listen = EnvOr("RLHF_LISTEN", defaults.listen_address);
  metrics_listen = EnvOr("RLHF_METRICS_LISTEN", defaults.metrics_address);
  flags.String("listen", &listen, "gRPC host:port (port 0: any free port); env RLHF_LISTEN");
  flags.String("metrics-listen", &metrics_listen,
               "Prometheus /metrics host:port; empty disables; env RLHF_METRICS_LISTEN");
  flags.Int("max-message-mb", &max_message_mb, "largest gRPC request/response in MiB");
  flags.Int("worker-threads", &worker_threads, "threads that run requests' work");
  flags.Int("queue-capacity", &queue_capacity,
            "requests that may wait for a worker; more get RESOURCE_EXHAUSTED");
  flags.Float("drain-seconds", &drain_seconds,
              "on SIGTERM/SIGINT, how long in-flight requests may take to finish");
  auth_token_file = EnvOr("RLHF_AUTH_TOKEN_FILE", "");
  tls_cert = EnvOr("RLHF_SERVER_TLS_CERT", "");
  tls_key = EnvOr("RLHF_SERVER_TLS_KEY", "");
  tls_ca = EnvOr("RLHF_SERVER_TLS_CA", "");
  flags.String("auth-token-file", &auth_token_file,
               "callers must send 'authorization: Bearer <token>' with a token from this file "
               "(one per line); health and reflection stay open; env RLHF_AUTH_TOKEN_FILE");
  flags.String("tls-cert", &tls_cert,
               "PEM certificate chain: serve TLS (with --tls-key); env RLHF_SERVER_TLS_CERT");
  flags.String("tls-key", &tls_key, "PEM private key of --tls-cert; env RLHF_SERVER_TLS_KEY");
  flags.String("tls-ca", &tls_ca,
               "PEM CA bundle: require client certificates it signed (mTLS); env "
               "RLHF_SERVER_TLS_CA");
  flags.Bool("insecure-no-auth", &insecure_no_auth,
             "allow a non-loopback --listen without --auth-token-file or --tls-ca");
}

ServerOptions ServerFlags::ToOptions() const {
  ServerOptions options;
  options.listen_address = listen;
  options.metrics_address = metrics_listen;
  options.max_message_bytes = max_message_mb << 20;
  options.worker_threads = static_cast<int>(worker_threads);
  options.queue_capacity = static_cast<int>(queue_capacity);
  options.drain_timeout = std::chrono::milliseconds(static_cast<int64_t>(drain_seconds * 1000));
  options.auth_token_file = auth_token_file;
  options.tls_cert_file = tls_cert;
  options.tls_key_file = tls_key;
  options.tls_client_ca_file = tls_ca;
  options.insecure_no_auth = insecure_no_auth;
  return options;
}

}  // namespace rlhf::server
