#pragma once
// Per-RPC Prometheus metrics shared by every service of a process:
//   rlhf_rpc_requests_total{service,method,code}            counter
//   rlhf_rpc_request_duration_seconds{service,method}       histogram
// Families are built once in the constructor; the children Add() returns are cached per
// label set (prometheus-cpp: never Add() on the hot path more than once). Thread-safe.

#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace rlhf::server {

inline constexpr char kServiceLabel[] = "service";
inline constexpr char kMethodLabel[] = "method";
inline constexpr char kCodeLabel[] = "code";

// "OK", "INVALID_ARGUMENT", ... as grpc's status code names.
std::string StatusCodeName(grpc::StatusCode code);

class RpcMetrics {
 public:
  explicit RpcMetrics(prometheus::Registry& registry);

  // Counts one finished call and records its duration.
  void Record(const std::string& service, const std::string& method, grpc::StatusCode code,
              double seconds);

 private:
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& durations_;
  std::mutex mutex_;
  std::map<std::tuple<std::string, std::string, int>, prometheus::Counter*> counters_;
  std::map<std::pair<std::string, std::string>, prometheus::Histogram*> histograms_;
};

}  // namespace rlhf::server
