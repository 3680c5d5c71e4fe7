#pragma once
// The flags every service binary shares, registered on main()'s FlagSet so that each
// main.cc fills its ServerOptions the same way. Defaults come from the environment
// (RLHF_LISTEN, RLHF_METRICS_LISTEN, RLHF_AUTH_TOKEN_FILE, RLHF_SERVER_TLS_*) when set, so
// containers need no arguments. Not thread-safe (main() only).

#include "common/cli/flags.h"
#include "common/server/server_options.h"

namespace rlhf::server {

// Storage the flag parser writes into; ToOptions() converts after Parse().
struct ServerFlags {
  std::string listen;
  std::string metrics_listen;
  int64_t max_message_mb = 64;
  int64_t worker_threads = 2;
  int64_t queue_capacity = 64;
  double drain_seconds = 10;
  std::string auth_token_file, tls_cert, tls_key, tls_ca;
  bool insecure_no_auth = false;

  void Register(cli::FlagSet& flags);
  ServerOptions ToOptions() const;
};

}  // namespace rlhf::server
