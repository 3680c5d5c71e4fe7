#include "common/server/rpc_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

namespace rlhf::server {
namespace {

prometheus::Histogram::BucketBoundaries DurationBuckets() {
  // From 1 ms (a health-sized call) to 30 min (Train on a large minibatch, a long
  // generation): tiny CPU runs and GPU runs at real sizes both land inside the layout.
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
          2.5,   5,      10,    30,   60,    120,  300, 600,  1800};
}

}  // namespace

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

RpcMetrics::RpcMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("rlhf_rpc_requests_total")
                    .Help("Finished RPCs by service, method and status code")
                    .Register(registry)),
      durations_(prometheus::BuildHistogram()
                     .Name("rlhf_rpc_request_duration_seconds")
                     .Help("RPC latency from arrival to the status being sent")
                     .Register(registry)) {}

void RpcMetrics::Record(const std::string& service, const std::string& method,
                        grpc::StatusCode code, double seconds) {
  prometheus::Counter* counter;
  prometheus::Histogram* histogram;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto& cached_counter = counters_[{service, method, static_cast<int>(code)}];
    if (cached_counter == nullptr) {
      cached_counter = &requests_.Add(
          {{kServiceLabel, service}, {kMethodLabel, method}, {kCodeLabel, StatusCodeName(code)}});
    }
    auto& cached_histogram = histograms_[{service, method}];
    if (cached_histogram == nullptr) {
      cached_histogram =
          &durations_.Add({{kServiceLabel, service}, {kMethodLabel, method}}, DurationBuckets());
    }
    counter = cached_counter;
    histogram = cached_histogram;
  }
  counter->Increment();
  histogram->Observe(seconds);
}

}  // namespace rlhf::server
