// ReferenceService behind real gRPC on loopback with the gpt2 fixture model.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/model/limits.h"
#include "common/model/loader.h"
#include "common/model/token_logprobs.h"
#include "common/rpc/tensor_codec.h"
#include "common/server/server_runner.h"
#include "services/reference/reference_service.h"
#include "tests/unit/server/server_test_util.h"

namespace rlhf::reference {
namespace {

using grpc::health::v1::HealthCheckResponse;
using server::testing::CheckHealth;
using server::testing::DeadlineIn;
using server::testing::LoopbackChannel;
using server::testing::LoopbackOptions;

constexpr char kModelDir[] = RLHF_SOURCE_DIR "/tests/golden/fixtures/models/gpt2";

std::shared_ptr<model::CausalLm> LoadModel() {
  auto model = model::LoadCausalLm(kModelDir);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

v1::LogProbsRequest MakeRequest(const std::vector<std::vector<int64_t>>& prompts,
                                const std::vector<std::vector<int64_t>>& responses) {
  v1::LogProbsRequest request;
  rpc::TokensToProto(prompts, request.mutable_batch()->mutable_prompts());
  rpc::TokensToProto(responses, request.mutable_batch()->mutable_responses());
  return request;
}

class ReferenceServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runner_ = std::make_unique<server::ServerRunner>(LoopbackOptions(/*metrics=*/false));
    service_ = std::make_unique<ReferenceService>(runner_->Executor("rlhf.v1.ReferenceService"));
    runner_->AddService(service_.get());
    ASSERT_TRUE(runner_->Start().ok());
    channel_ = LoopbackChannel(runner_->port());
    stub_ = v1::ReferenceService::NewStub(channel_);
  }
  void TearDown() override {
    stub_.reset();  // the server drains until client channels close
    channel_.reset();
    runner_->Shutdown();
  }

  void LoadAndServe() {
    service_->SetCore(std::make_shared<ReferenceCore>(LoadModel()));
    runner_->SetServing(true);
  }

  grpc::Status Call(const v1::LogProbsRequest& request, v1::LogProbsResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(std::chrono::seconds(30)));
    return stub_->LogProbs(&context, request, response);
  }

  void ExpectInvalid(const v1::LogProbsRequest& request, const std::string& mention) {
    v1::LogProbsResponse response;
    grpc::Status status = Call(request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find(mention), std::string::npos) << status.error_message();
  }

  std::unique_ptr<server::ServerRunner> runner_;
  std::unique_ptr<ReferenceService> service_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ReferenceService::Stub> stub_;
};

TEST_F(ReferenceServiceTest, NotServingUntilTheModelIsLoaded) {
  EXPECT_EQ(CheckHealth(channel_), HealthCheckResponse::NOT_SERVING);
  v1::LogProbsResponse response;
  EXPECT_EQ(Call(MakeRequest({{1, 2}}, {{3}}), &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  LoadAndServe();
  EXPECT_EQ(CheckHealth(channel_), HealthCheckResponse::SERVING);
  EXPECT_TRUE(Call(MakeRequest({{1, 2}}, {{3}}), &response).ok());
}

TEST_F(ReferenceServiceTest, LogProbsEqualComputeTokenLogprobsPerSequence) {
  LoadAndServe();
  const std::vector<std::vector<int64_t>> prompts = {{5, 17, 42}, {7}, {100, 200}};
  const std::vector<std::vector<int64_t>> responses = {{9, 11}, {3, 4, 5, 6}, {}};
  for (float temperature : {0.0f, 0.7f}) {
    v1::LogProbsRequest request = MakeRequest(prompts, responses);
    request.set_temperature(temperature);
    v1::LogProbsResponse response;
    grpc::Status status = Call(request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    auto got = rpc::TensorFromProto(response.logprobs());
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->numel(), 6);

    auto model = LoadModel();
    torch::InferenceMode inference;
    std::vector<torch::Tensor> expected;
    for (size_t b = 0; b < prompts.size(); ++b) {
      if (responses[b].empty()) continue;
      std::vector<int64_t> ids = prompts[b];
      ids.insert(ids.end(), responses[b].begin(), responses[b].end());
      model::TokenLogprobsOptions options;
      options.temperature = temperature == 0 ? 1.0f : temperature;
      auto direct = model::ComputeTokenLogprobs(*model, torch::tensor(ids).unsqueeze(0),
                                                torch::Tensor(), options);
      ASSERT_TRUE(direct.ok());
      expected.push_back(direct->logprobs[0].narrow(0, prompts[b].size() - 1, responses[b].size()));
    }
    EXPECT_TRUE(torch::allclose(*got, torch::cat(expected), 1e-5, 1e-5))
        << *got << torch::cat(expected);
  }
}

TEST_F(ReferenceServiceTest, BadRequestsAreInvalidArgumentAndServingContinues) {
  LoadAndServe();
  v1::LogProbsRequest bad_offsets = MakeRequest({{1, 2}}, {{3}});
  bad_offsets.mutable_batch()->mutable_prompts()->set_offsets(1, 7);
  ExpectInvalid(bad_offsets, "batch.prompts");

  ExpectInvalid(MakeRequest({{1, 2}}, {{512}}), "outside the vocabulary");
  ExpectInvalid(MakeRequest({{1, 2}, {3}}, {{3}}), "2 prompts but 1 responses");
  ExpectInvalid(MakeRequest({{}}, {{3}}), "prompt 0 is empty");
  ExpectInvalid(MakeRequest({std::vector<int64_t>(120, 1)}, {std::vector<int64_t>(20, 1)}),
                "context");
  v1::LogProbsRequest negative = MakeRequest({{1}}, {{2}});
  negative.set_temperature(-1);
  ExpectInvalid(negative, "temperature");

  v1::LogProbsResponse response;
  EXPECT_TRUE(Call(MakeRequest({{1, 2}}, {{3}}), &response).ok());
}

// A batch larger than one chunk (model::kForwardChunkTokens padded tokens) runs as row chunks
// with the same result; a caller who gives up is noticed between chunks.
TEST(ReferenceCoreTest, ChunkedBatchesEqualOneForwardAndStopWhenAbandoned) {
  ReferenceCore core(LoadModel());
  const int64_t width = 100;  // 80 prompt + 20 response tokens per row
  const int64_t rows = model::kForwardChunkTokens / width * 2 + 3;  // two chunks and a bit
  std::vector<std::vector<int64_t>> prompts, responses;
  for (int64_t r = 0; r < rows; ++r) {
    prompts.push_back(std::vector<int64_t>(80, 1 + r % 300));
    responses.push_back(std::vector<int64_t>(20, 2 + r % 200));
  }
  v1::LogProbsRequest request = MakeRequest(prompts, responses);
  int polls = 0;
  auto whole = core.LogProbs(request.batch(), 0.0f, [&] { return ++polls > 100; });
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(polls, 2);  // between the three chunks
  ASSERT_EQ(whole->numel(), rows * 20);
  // Rows that share a chunk and rows in another chunk give what one-row batches give.
  for (int64_t r : {int64_t{0}, rows / 2, rows - 1}) {
    auto one = core.LogProbs(MakeRequest({prompts[r]}, {responses[r]}).batch(), 0.0f);
    ASSERT_TRUE(one.ok());
    EXPECT_TRUE(torch::allclose(whole->narrow(0, r * 20, 20), *one, 1e-5, 1e-5)) << r;
  }

  auto abandoned = core.LogProbs(request.batch(), 0.0f, [] { return true; });
  ASSERT_FALSE(abandoned.ok());
  EXPECT_EQ(abandoned.status().code(), absl::StatusCode::kCancelled);
  EXPECT_NE(abandoned.status().message().find("after 327 of 657"), std::string::npos)
      << abandoned.status();
}

}  // namespace
}  // namespace rlhf::reference
