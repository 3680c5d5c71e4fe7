#include "services/actor/actor_service.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/rpc/status_util.h"
#include "common/rpc/tensor_codec.h"
#include "common/status/torch_status.h"

namespace rlhf::actor {
namespace {

// Weights go out as floating-point wire dtypes only.
absl::StatusOr<v1::DataType> WireType(torch::ScalarType type) {
  if (c10::isFloatingType(type)) {
    auto wire = rpc::WireDtype(type);
    if (wire.ok()) return wire;
  }
  return absl::InternalError(
      absl::StrCat("weight dtype ", std::string(c10::toString(type)), " has no wire type"));
}

// Streams a WeightSnapshot: one chunk in flight at a time; the next is cut in OnWriteDone.
// Deletes itself in OnDone.
class ExportWeightsReactor final : public grpc::ServerWriteReactor<v1::WeightChunk> {
 public:
  ExportWeightsReactor(server::RpcExecutor executor, std::shared_ptr<ActorCore> core,
                       int64_t chunk_bytes, bool include_value_head, torch::ScalarType dtype)
      : executor_(std::move(executor)),
        chunk_bytes_(chunk_bytes),
        start_(server::RpcExecutor::Clock::now()) {
    // The snapshot copies every weight: heavy, so it runs on the pool.
    // The reactor lives until both OnDone and this task have run (a cancelled call may be
    // done before the task starts).
    task_pending_ = true;
    const bool queued = executor_.Submit([this, core = std::move(core), include_value_head, dtype] {
      absl::StatusOr<WeightSnapshot> snapshot = absl::CancelledError("call already finished");
      bool wanted = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        wanted = !finished_;
      }
      if (wanted) snapshot = core->SnapshotWeights(include_value_head, dtype);
      bool done = false;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        task_pending_ = false;
        done = done_;
        if (!done && wanted) {
          if (!snapshot.ok()) {
            FinishLocked(rpc::ToGrpcStatus(snapshot.status()));
          } else {
            snapshot_ = std::move(*snapshot);
            WriteNextLocked();
          }
        }
      }
      if (done) delete this;
    });
    if (!queued) {
      std::lock_guard<std::mutex> lock(mutex_);
      task_pending_ = false;
      FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "actor work queue is full"));
    }
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!ok) return FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream broken"));
    WriteNextLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mutex_);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }

  void OnDone() override {
    executor_.Record("ExportWeights", code_, start_);
    bool pending = false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
      pending = task_pending_;
    }
    if (!pending) delete this;
  }

 private:
  // Reactions are a thread edge too: nothing they throw may escape.
  void WriteNextLocked() {
    absl::Status status = CatchTorchErrors("ExportWeights", [&] { return CutNextChunkLocked(); });
    if (!status.ok()) FinishLocked(rpc::ToGrpcStatus(status));
  }

  absl::Status CutNextChunkLocked() {
    if (finished_) return absl::OkStatus();
    if (tensor_ >= snapshot_.tensors.size()) {
      FinishLocked(grpc::Status::OK);
      return absl::OkStatus();
    }
    const auto& [name, tensor] = snapshot_.tensors[tensor_];
    const int64_t total = tensor.nbytes();
    const int64_t size = std::min(chunk_bytes_, total - offset_);
    chunk_.Clear();
    chunk_.set_version(snapshot_.version);
    chunk_.set_name(name);
    if (offset_ == 0) {
      auto dtype = WireType(tensor.scalar_type());
      if (!dtype.ok()) return dtype.status();
      chunk_.set_dtype(*dtype);
      for (int64_t d : tensor.sizes()) chunk_.add_shape(d);
    }
    chunk_.set_offset(offset_);
    chunk_.set_data(static_cast<const char*>(tensor.data_ptr()) + offset_, size);
    offset_ += size;
    const bool last = offset_ >= total;
    chunk_.set_last_chunk_of_tensor(last);
    if (last) {
      ++tensor_;
      offset_ = 0;
    }
    StartWrite(&chunk_);
    return absl::OkStatus();
  }

  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    code_ = status.error_code();
    Finish(status);
  }

  server::RpcExecutor executor_;
  const int64_t chunk_bytes_;
  const server::RpcExecutor::Clock::time_point start_;
  std::mutex mutex_;
  WeightSnapshot snapshot_;
  size_t tensor_ = 0;
  int64_t offset_ = 0;
  v1::WeightChunk chunk_;
  bool finished_ = false;
  bool task_pending_ = false;
  bool done_ = false;
  grpc::StatusCode code_ = grpc::StatusCode::OK;
};

// A stream that ends at once with `status`.
class FailedWriteReactor final : public grpc::ServerWriteReactor<v1::WeightChunk> {
 public:
  explicit FailedWriteReactor(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

}  // namespace

ActorService::ActorService(server::RpcExecutor executor) : executor_(std::move(executor)) {}

void ActorService::SetCore(std::shared_ptr<ActorCore> core) {
  std::lock_guard<std::mutex> lock(mutex_);
  core_ = std::move(core);
}

std::shared_ptr<ActorCore> ActorService::core() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return core_;
}

#define RLHF_ACTOR_UNARY(Method)                                                        \
  return executor_.Unary(context, #Method, response, [this, request, response] {        \
    auto core = this->core();                                                           \
    if (core == nullptr) return absl::UnavailableError("actor model is still loading"); \
    return core->Method(*request, response);                                            \
  })

grpc::ServerUnaryReactor* ActorService::Evaluate(grpc::CallbackServerContext* context,
                                                 const v1::EvaluateRequest* request,
                                                 v1::EvaluateResponse* response) {
  RLHF_ACTOR_UNARY(Evaluate);
}

grpc::ServerUnaryReactor* ActorService::Train(grpc::CallbackServerContext* context,
                                              const v1::TrainRequest* request,
                                              v1::TrainResponse* response) {
  return executor_.Unary(context, "Train", response, [this, context, request, response] {
    auto core = this->core();
    if (core == nullptr) return absl::UnavailableError("actor model is still loading");
    // Long training stops between optimizer steps once nobody waits for it.
    return core->Train(*request, response, server::RpcExecutor::AbandonedCheck(context));
  });
}

grpc::ServerUnaryReactor* ActorService::SaveCheckpoint(grpc::CallbackServerContext* context,
                                                       const v1::CheckpointRequest* request,
                                                       v1::CheckpointResponse* response) {
  RLHF_ACTOR_UNARY(SaveCheckpoint);
}

grpc::ServerUnaryReactor* ActorService::LoadCheckpoint(grpc::CallbackServerContext* context,
                                                       const v1::CheckpointRequest* request,
                                                       v1::CheckpointResponse* response) {
  RLHF_ACTOR_UNARY(LoadCheckpoint);
}

#undef RLHF_ACTOR_UNARY

grpc::ServerWriteReactor<v1::WeightChunk>* ActorService::ExportWeights(
    grpc::CallbackServerContext* context, const v1::ExportWeightsRequest* request) {
  if (grpc::Status denied = executor_.Authenticate(*context); !denied.ok()) {
    executor_.Record("ExportWeights", denied.error_code(), server::RpcExecutor::Clock::now());
    return new FailedWriteReactor(denied);
  }
  auto core = this->core();
  if (core == nullptr) {
    return new FailedWriteReactor(
        grpc::Status(grpc::StatusCode::UNAVAILABLE, "actor model is still loading"));
  }
  if (request->chunk_bytes() < 0) {
    return new FailedWriteReactor(grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("chunk_bytes must be >= 0 (0: 4 MiB), got ", request->chunk_bytes())));
  }
  torch::ScalarType dtype = torch::kFloat32;
  if (request->dtype() != v1::DATA_TYPE_UNSPECIFIED) {
    auto wire = rpc::TorchDtype(request->dtype());
    if (!wire.ok() ||
        !(*wire == torch::kFloat32 || *wire == torch::kBFloat16 || *wire == torch::kFloat16)) {
      return new FailedWriteReactor(grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("dtype must be F32, BF16 or F16, got ",
                                                           v1::DataType_Name(request->dtype()))));
    }
    dtype = *wire;
  }
  // Leave room for the chunk's other fields under the message limit.
  const int64_t max_chunk = std::max<int64_t>(1, executor_.max_response_bytes() - (64 << 10));
  const int64_t chunk_bytes = std::min(
      request->chunk_bytes() == 0 ? kDefaultChunkBytes : request->chunk_bytes(), max_chunk);
  return new ExportWeightsReactor(executor_, std::move(core), chunk_bytes,
                                  request->include_value_head(), dtype);
}

}  // namespace rlhf::actor
