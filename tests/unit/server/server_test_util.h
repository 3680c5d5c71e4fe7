#pragma once
// Helpers for tests of gRPC services built on common/server: options on loopback port 0,
// a grpc.health.v1 check, and a plain HTTP GET of /metrics over a real socket.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "common/server/server_options.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace rlhf::server::testing {

// metrics=false for tests that do not scrape /metrics: stopping its HTTP server takes ~2 s.
inline ServerOptions LoopbackOptions(bool metrics = true) {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  options.metrics_address = metrics ? "127.0.0.1:0" : "";
  options.drain_timeout = std::chrono::milliseconds(2000);
  return options;
}

inline std::chrono::system_clock::time_point DeadlineIn(std::chrono::milliseconds budget) {
  return std::chrono::system_clock::now() + budget;
}

inline std::shared_ptr<grpc::Channel> LoopbackChannel(int port) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  args.SetMaxSendMessageSize(64 << 20);
  // A channel of its own: with the global subchannel pool a closed channel's connection
  // lingers, and Server::Shutdown waits for it until the drain deadline.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials(), args);
}

// The serving status of `service` ("" = the whole server), or UNKNOWN on an RPC error.
inline grpc::health::v1::HealthCheckResponse::ServingStatus CheckHealth(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& service = "") {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(std::chrono::seconds(10)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  if (!stub->Check(&context, request, &response).ok()) {
    return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }
  return response.status();
}

// GET http://127.0.0.1:port/path with HTTP/1.0 (the server closes after the response);
// returns the body, or "" when the request fails.
inline std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n;
      while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) reply.append(buffer, n);
    }
  }
  close(fd);
  const size_t body = reply.find("\r\n\r\n");
  return body == std::string::npos ? "" : reply.substr(body + 4);
}

// The value on the first exposition line that starts with `metric` and contains every
// one of `labels` (e.g. `code="OK"`), or -1 when there is none.
inline double MetricValue(const std::string& exposition, const std::string& metric,
                          const std::vector<std::string>& labels) {
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(metric + "{", 0) != 0) continue;
    bool all = true;
    for (const auto& label : labels) all = all && line.find(label) != std::string::npos;
    if (!all) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}

// This process's peak resident set size (VmHWM) in MiB, or -1 where /proc is missing.
inline int64_t PeakRssMiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) / 1024;  // kB
  }
  return -1;
}

}  // namespace rlhf::server::testing
