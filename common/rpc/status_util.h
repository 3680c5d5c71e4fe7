#pragma once
// absl::Status inside, one conversion at the gRPC edge (as TensorFlow Serving's
// util/grpc_status_util.cc does). Nothing throws across a gRPC boundary.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace rlhf::rpc {

// Messages longer than this are truncated: gRPC carries them in HTTP/2 trailers,
// which peers may reject when large (TF Serving uses the same ~1 KiB bound).
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// Converts an absl::Status to a grpc::Status with the same code and a message of at
// most kMaxStatusMessageBytes. Thread-safe.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Converts a grpc::Status (e.g. from a client call) back to an absl::Status.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace rlhf::rpc
