// LibTorch and gRPC/Protobuf (Debian's) in one process: a real gRPC call over
// loopback carries a generated protobuf message whose payload is computed with torch.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/rpc/status_util.h"
#include "common/rpc/tensor_codec.h"
#include "rlhf/testing/echo.grpc.pb.h"

namespace rlhf::rpc {
namespace {

// Callback-API service: doubles the tensor with a torch op.
class DoublingService final : public testing::TensorEcho::CallbackService {
  grpc::ServerUnaryReactor* Double(grpc::CallbackServerContext* context,
                                   const v1::TensorProto* request,
                                   v1::TensorProto* response) override {
    auto* reactor = context->DefaultReactor();
    auto tensor = TensorFromProto(*request);
    if (!tensor.ok()) {
      reactor->Finish(ToGrpcStatus(tensor.status()));
      return reactor;
    }
    reactor->Finish(ToGrpcStatus(TensorToProto(*tensor * 2, response)));
    return reactor;
  }
};

class GrpcTorchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                       grpc::InsecureChannelCredentials());
    stub_ = testing::TensorEcho::NewStub(channel);
  }
  void TearDown() override { server_->Shutdown(); }

  grpc::Status Call(const v1::TensorProto& request, v1::TensorProto* response) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub_->Double(&context, request, response);
  }

  DoublingService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<testing::TensorEcho::Stub> stub_;
};

TEST_F(GrpcTorchTest, TensorRoundTripsThroughRealCall) {
  torch::manual_seed(0);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat64}) {
    torch::Tensor input = torch::randn({3, 5, 7}).to(dtype);
    v1::TensorProto request, response;
    ASSERT_TRUE(TensorToProto(input, &request).ok());
    grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    auto output = TensorFromProto(response);
    ASSERT_TRUE(output.ok()) << output.status();
    EXPECT_EQ(output->scalar_type(), dtype);
    EXPECT_EQ(output->sizes(), input.sizes());
    EXPECT_TRUE(torch::equal(*output, input * 2));
  }
}

TEST_F(GrpcTorchTest, BadRequestGetsInvalidArgumentAndServerKeepsServing) {
  v1::TensorProto bad, response;
  bad.set_dtype(v1::DATA_TYPE_F32);
  bad.add_shape(4);
  bad.set_data(std::string(3, '\0'));  // 3 bytes for 4 floats
  grpc::Status status = Call(bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("needs 16"), std::string::npos) << status.error_message();

  v1::TensorProto good;
  ASSERT_TRUE(TensorToProto(torch::ones({2}), &good).ok());
  ASSERT_TRUE(Call(good, &response).ok());
  EXPECT_TRUE(torch::equal(*TensorFromProto(response), torch::full({2}, 2.0f)));
}

}  // namespace
}  // namespace rlhf::rpc
