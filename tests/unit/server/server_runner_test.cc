// common/server behind real gRPC on loopback: health NOT_SERVING -> SERVING, /metrics over
// HTTP, RESOURCE_EXHAUSTED from a full pool, DEADLINE_EXCEEDED for expired work, drain.

#include <future>
#include <new>
#include <stdexcept>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/rpc/tensor_codec.h"
#include "common/server/server_runner.h"
#include "rlhf/testing/echo.grpc.pb.h"
#include "tests/unit/server/server_test_util.h"

namespace rlhf::server {
namespace {

using grpc::health::v1::HealthCheckResponse;
using testing::CheckHealth;
using testing::DeadlineIn;
using testing::HttpGet;
using testing::LoopbackChannel;
using testing::LoopbackOptions;
using testing::MetricValue;

constexpr char kService[] = "rlhf.testing.TensorEcho";

// Handlers that throw (what a bug or an exhausted allocator does): a first element of -1
// throws std::bad_alloc, -2 a std::runtime_error, -3 LibTorch's out-of-memory error and -4
// an unguarded torch shape error.
void ThrowOnSentinel(const torch::Tensor& tensor) {
  if (tensor.numel() == 0) return;
  const float first = tensor.flatten()[0].item<float>();
  if (first == -1) throw std::bad_alloc();
  if (first == -2) throw std::runtime_error("malformed JSON in a handler");
  if (first == -3) TORCH_CHECK_WITH(OutOfMemoryError, false, "CUDA out of memory. Tried 8 GiB");
  if (first == -4) (void)tensor.view({7, 7});
}

// Doubles a tensor on the pool; while `gate` is set, each call first waits for it.
class GatedEchoService final : public rlhf::testing::TensorEcho::CallbackService {
 public:
  explicit GatedEchoService(RpcExecutor executor) : executor_(std::move(executor)) {}

  void Close() {
    gate_ = std::make_shared<std::promise<void>>();
    opened_ = gate_->get_future().share();
  }
  void Open() { gate_->set_value(); }
  std::future<void> Started() { return started_.get_future(); }

  grpc::ServerUnaryReactor* Double(grpc::CallbackServerContext* context,
                                   const v1::TensorProto* request,
                                   v1::TensorProto* response) override {
    const bool gated = gate_ != nullptr;
    std::shared_future<void> opened = opened_;
    return executor_.Unary(context, "Double", response, [=, this] {
      if (gated) {
        if (!started_set_.exchange(true)) started_.set_value();
        opened.wait();
      }
      auto tensor = rpc::TensorFromProto(*request);
      if (!tensor.ok()) return tensor.status();
      ThrowOnSentinel(*tensor);
      return rpc::TensorToProto(*tensor * 2, response);
    });
  }

 private:
  RpcExecutor executor_;
  std::shared_ptr<std::promise<void>> gate_;
  std::shared_future<void> opened_;
  std::promise<void> started_;
  std::atomic<bool> started_set_{false};
};

v1::TensorProto Ones() {
  v1::TensorProto proto;
  EXPECT_TRUE(rpc::TensorToProto(torch::ones({3}), &proto).ok());
  return proto;
}

grpc::Status CallDouble(rlhf::testing::TensorEcho::Stub& stub, const v1::TensorProto& request,
                        std::chrono::milliseconds budget = std::chrono::seconds(10)) {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(budget));
  v1::TensorProto response;
  return stub.Double(&context, request, &response);
}

// Lists the server's services through server reflection (grpc.reflection.v1alpha, the
// version gRPC 1.51 serves) with a generic stub: the request is ListServices (field 7,
// empty string) as raw protobuf bytes; the reply's service names appear verbatim.
std::string ReflectionListServices(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::CompletionQueue cq;
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(std::chrono::seconds(10)));
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](int id) {
    return cq.Next(&tag, &ok) && tag == reinterpret_cast<void*>(id) && ok;
  };
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  call->StartCall(reinterpret_cast<void*>(1));
  if (!step(1)) return "";
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  if (!step(2)) return "";
  call->WritesDone(reinterpret_cast<void*>(3));
  if (!step(3)) return "";
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(4));
  if (!step(4)) return "";
  std::vector<grpc::Slice> slices;
  (void)reply.Dump(&slices);
  std::string bytes;
  for (const auto& piece : slices)
    bytes.append(reinterpret_cast<const char*>(piece.begin()), piece.size());
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  return bytes;
}

TEST(WorkPoolTest, RefusesWhenEveryWorkerIsBusyAndTheQueueIsFull) {
  WorkPool pool(/*threads=*/1, /*queue_capacity=*/1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  ASSERT_TRUE(pool.TrySubmit([&] {
    started.set_value();
    released.wait();
  }));
  started.get_future().wait();
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool.TrySubmit([&] { ++ran; }));   // waits in the queue
  EXPECT_FALSE(pool.TrySubmit([&] { ++ran; }));  // queue full
  release.set_value();
  pool.Stop();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_FALSE(pool.TrySubmit([] {}));  // stopped
}

TEST(ServerRunnerTest, HealthFollowsReadinessAndMetricsAreScrapedOverHttp) {
  ServerRunner runner(LoopbackOptions());
  GatedEchoService service(runner.Executor(kService));
  runner.AddService(&service);
  ASSERT_TRUE(runner.Start().ok());
  ASSERT_GT(runner.port(), 0);
  ASSERT_GT(runner.metrics_port(), 0);
  auto channel = LoopbackChannel(runner.port());
  EXPECT_EQ(CheckHealth(channel), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(CheckHealth(channel, kService), HealthCheckResponse::NOT_SERVING);
  runner.SetServing(true);
  EXPECT_EQ(CheckHealth(channel), HealthCheckResponse::SERVING);
  // Each served service answers by its own name; an unknown name is NOT_FOUND.
  EXPECT_EQ(CheckHealth(channel, kService), HealthCheckResponse::SERVING);
  EXPECT_EQ(CheckHealth(channel, "rlhf.v1.NoSuchService"), HealthCheckResponse::UNKNOWN);
  const std::string services = ReflectionListServices(channel);
  EXPECT_NE(services.find(kService), std::string::npos) << services;
  EXPECT_NE(services.find("grpc.health.v1.Health"), std::string::npos) << services;

  auto stub = rlhf::testing::TensorEcho::NewStub(channel);
  EXPECT_TRUE(CallDouble(*stub, Ones()).ok());
  EXPECT_TRUE(CallDouble(*stub, Ones()).ok());
  v1::TensorProto bad = Ones();
  bad.set_data("xyz");
  EXPECT_EQ(CallDouble(*stub, bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  const std::string metrics = HttpGet(runner.metrics_port(), "/metrics");
  const std::string service_label = std::string("service=\"") + kService + "\"";
  EXPECT_EQ(MetricValue(metrics, "rlhf_rpc_requests_total",
                        {service_label, "method=\"Double\"", "code=\"OK\""}),
            2)
      << metrics;
  EXPECT_EQ(MetricValue(metrics, "rlhf_rpc_requests_total",
                        {service_label, "method=\"Double\"", "code=\"INVALID_ARGUMENT\""}),
            1);
  EXPECT_EQ(MetricValue(metrics, "rlhf_rpc_request_duration_seconds_count",
                        {service_label, "method=\"Double\""}),
            3);

  // The in-process channel reaches the same service without the network.
  auto in_process = rlhf::testing::TensorEcho::NewStub(runner.InProcessChannel());
  EXPECT_TRUE(CallDouble(*in_process, Ones()).ok());
  runner.Shutdown();
  runner.Shutdown();  // idempotent
}

TEST(ServerRunnerTest, FullPoolAnswersResourceExhaustedAndExpiredWorkIsSkipped) {
  ServerOptions options = LoopbackOptions();
  options.worker_threads = 1;
  options.queue_capacity = 1;
  ServerRunner runner(options);
  GatedEchoService service(runner.Executor(kService));
  runner.AddService(&service);
  ASSERT_TRUE(runner.Start().ok());
  runner.SetServing(true);
  auto stub = rlhf::testing::TensorEcho::NewStub(LoopbackChannel(runner.port()));

  service.Close();
  auto started = service.Started();
  auto blocked = std::async(std::launch::async, [&] { return CallDouble(*stub, Ones()); });
  started.wait();
  // Waits in the queue past its deadline.
  auto expired = std::async(std::launch::async, [&] {
    return CallDouble(*stub, Ones(), std::chrono::milliseconds(200));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  grpc::Status refused = CallDouble(*stub, Ones());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(expired.get().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server's deadline is the 200 ms counted from when the call reached it, which was
  // before the refused call was answered; under load that is later than the client's.
  // Past it, the queued call is skipped as DEADLINE_EXCEEDED (not CANCELLED by the
  // client's give-up).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  service.Open();
  EXPECT_TRUE(blocked.get().ok());

  // The queued call ran after its deadline and was skipped, not computed.
  const std::string service_label = std::string("service=\"") + kService + "\"";
  double skipped = -1;
  for (int i = 0; i < 100 && skipped != 1; ++i) {
    skipped = MetricValue(HttpGet(runner.metrics_port(), "/metrics"), "rlhf_rpc_requests_total",
                          {service_label, "code=\"DEADLINE_EXCEEDED\""});
    if (skipped != 1) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(skipped, 1);
  EXPECT_EQ(MetricValue(HttpGet(runner.metrics_port(), "/metrics"), "rlhf_rpc_requests_total",
                        {service_label, "code=\"RESOURCE_EXHAUSTED\""}),
            1);
  EXPECT_TRUE(CallDouble(*stub, Ones()).ok());  // still serving
}

// Nothing a handler throws reaches std::terminate: the executor maps it to a status (out
// of memory to RESOURCE_EXHAUSTED) and the server keeps serving.
TEST(ServerRunnerTest, ExceptionsFromHandlersBecomeStatuses) {
  ServerRunner runner(LoopbackOptions());
  GatedEchoService service(runner.Executor(kService));
  runner.AddService(&service);
  ASSERT_TRUE(runner.Start().ok());
  runner.SetServing(true);
  auto stub = rlhf::testing::TensorEcho::NewStub(LoopbackChannel(runner.port()));
  auto call = [&](float sentinel) {
    v1::TensorProto request;
    EXPECT_TRUE(rpc::TensorToProto(torch::full({3}, sentinel), &request).ok());
    return CallDouble(*stub, request);
  };
  const grpc::Status bad_alloc = call(-1);
  EXPECT_EQ(bad_alloc.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(bad_alloc.error_message().find("out of memory"), std::string::npos);
  const grpc::Status thrown = call(-2);
  EXPECT_EQ(thrown.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(thrown.error_message().find("malformed JSON"), std::string::npos);
  const grpc::Status torch_oom = call(-3);
  EXPECT_EQ(torch_oom.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << torch_oom.error_message();
  EXPECT_EQ(call(-4).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_TRUE(CallDouble(*stub, Ones()).ok());  // still serving
}

TEST(WorkPoolTest, AThrowingTaskDoesNotEndTheProcess) {
  WorkPool pool(/*threads=*/1, /*queue_capacity=*/2);
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.TrySubmit([] { throw std::runtime_error("escaped"); }));
  ASSERT_TRUE(pool.TrySubmit([&] { ++ran; }));
  pool.Stop();
  EXPECT_EQ(ran.load(), 1);
}

TEST(ServerRunnerTest, BindFailureNamesTheAddress) {
  ServerOptions options = LoopbackOptions();
  options.listen_address = "256.0.0.1:1";
  options.metrics_address = "";
  ServerRunner runner(options);
  absl::Status status = runner.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("256.0.0.1:1"), std::string::npos) << status;
  EXPECT_EQ(runner.metrics_port(), 0);
}

}  // namespace
}  // namespace rlhf::server
