// RolloutService behind real gRPC on loopback with examples/models/tiny-gpt2: generation
// equals model::Generate, weight pushes swap atomically and set the version, bad pushes
// and bad requests are INVALID_ARGUMENT and leave the old weights serving.

#include <cstring>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/model/generation.h"
#include "common/model/loader.h"
#include "common/rpc/tensor_codec.h"
#include "common/server/server_runner.h"
#include "services/rollout/rollout_service.h"
#include "tests/unit/server/server_test_util.h"

namespace rlhf::rollout {
namespace {

using server::testing::DeadlineIn;
using server::testing::HttpGet;
using server::testing::LoopbackChannel;
using server::testing::LoopbackOptions;
using server::testing::MetricValue;

constexpr char kModelDir[] = RLHF_SOURCE_DIR "/examples/models/tiny-gpt2";

std::shared_ptr<model::CausalLm> LoadModel() {
  auto model = model::LoadCausalLm(kModelDir);
  EXPECT_TRUE(model.ok()) << model.status();
  return *model;
}

// Every parameter of `model` as chunks of at most `chunk_bytes`.
std::vector<v1::WeightChunk> ToChunks(model::CausalLm& model, int64_t version,
                                      size_t chunk_bytes = 4096) {
  std::vector<v1::WeightChunk> chunks;
  for (const auto& item : model.named_parameters()) {
    const torch::Tensor tensor = item.value().detach().to(torch::kCPU).contiguous();
    const char* data = static_cast<const char*>(tensor.data_ptr());
    const size_t total = tensor.nbytes();
    for (size_t offset = 0; offset < total || offset == 0; offset += chunk_bytes) {
      v1::WeightChunk chunk;
      chunk.set_version(version);
      if (offset == 0) {
        chunk.set_name(item.key());
        chunk.set_dtype(v1::DATA_TYPE_F32);
        for (int64_t size : tensor.sizes()) chunk.add_shape(size);
      }
      chunk.set_offset(static_cast<int64_t>(offset));
      const size_t size = std::min(chunk_bytes, total - offset);
      chunk.set_data(std::string(data + offset, size));
      chunk.set_last_chunk_of_tensor(offset + size >= total);
      chunks.push_back(std::move(chunk));
      if (total == 0) break;
    }
  }
  return chunks;
}

class RolloutServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runner_ = std::make_unique<server::ServerRunner>(LoopbackOptions());
    service_ = std::make_unique<RolloutService>(runner_->Executor("rlhf.v1.RolloutService"));
    runner_->AddService(service_.get());
    ASSERT_TRUE(runner_->Start().ok());
    service_->SetCore(std::make_shared<RolloutCore>(LoadModel()));
    runner_->SetServing(true);
    stub_ = v1::RolloutService::NewStub(LoopbackChannel(runner_->port()));
  }
  void TearDown() override {
    stub_.reset();  // the server drains until client channels close
    runner_->Shutdown();
  }

  grpc::Status Generate(const v1::GenerateRequest& request, v1::GenerateResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(std::chrono::seconds(60)));
    return stub_->Generate(&context, request, response);
  }

  grpc::Status Push(const std::vector<v1::WeightChunk>& chunks, v1::LoadWeightsResponse* response) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(std::chrono::seconds(60)));
    auto writer = stub_->LoadWeights(&context, response);
    for (const auto& chunk : chunks) {
      if (!writer->Write(chunk)) break;  // the server finished early (bad chunk)
    }
    writer->WritesDone();
    return writer->Finish();
  }

  static v1::GenerateRequest Request(const std::vector<std::vector<int64_t>>& prompts,
                                     float temperature, int32_t n = 1, uint64_t seed = 0) {
    v1::GenerateRequest request;
    rpc::TokensToProto(prompts, request.mutable_prompts());
    request.set_samples_per_prompt(n);
    request.set_seed(seed);
    request.mutable_sampling()->set_max_new_tokens(8);
    request.mutable_sampling()->set_temperature(temperature);
    return request;
  }

  static std::vector<std::vector<int64_t>> Completions(const v1::GenerateResponse& response) {
    auto tokens = rpc::TokensFromProto(response.completions());
    EXPECT_TRUE(tokens.ok());
    return *tokens;
  }

  std::unique_ptr<server::ServerRunner> runner_;
  std::unique_ptr<RolloutService> service_;
  std::unique_ptr<v1::RolloutService::Stub> stub_;
};

const std::vector<std::vector<int64_t>> kPrompts = {{10, 20, 30}, {7}};

TEST_F(RolloutServiceTest, GreedyAndSampledOutputEqualModelGenerate) {
  auto model = LoadModel();
  model::SamplingParams greedy;
  greedy.max_new_tokens = 8;
  greedy.greedy = true;
  const std::vector<uint64_t> zero_seeds = {0, 0};
  auto expected = model::Generate(*model, kPrompts, greedy, zero_seeds);
  ASSERT_TRUE(expected.ok());

  v1::GenerateResponse response;
  grpc::Status status = Generate(Request(kPrompts, 0), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(Completions(response), expected->tokens);
  EXPECT_EQ(response.finish_reasons_size(), 2);
  EXPECT_EQ(response.policy_version(), 0);
  auto logprobs = rpc::TensorFromProto(response.sampling_logprobs());
  ASSERT_TRUE(logprobs.ok());
  EXPECT_EQ(logprobs->numel(), response.completions().ids_size());
  EXPECT_NEAR(logprobs->index({0}).item<float>(), expected->logprobs[0][0], 1e-6);

  // n = 3 samples per prompt: completion i is seeded with seed + i, prompt-major.
  model::SamplingParams sampled;
  sampled.max_new_tokens = 8;
  sampled.temperature = 0.9f;
  std::vector<std::vector<int64_t>> expanded;
  std::vector<uint64_t> seeds;
  for (const auto& prompt : kPrompts) {
    for (int j = 0; j < 3; ++j) {
      seeds.push_back(100 + expanded.size());
      expanded.push_back(prompt);
    }
  }
  auto expected_samples = model::Generate(*model, expanded, sampled, seeds);
  ASSERT_TRUE(expected_samples.ok());
  v1::GenerateResponse samples;
  ASSERT_TRUE(Generate(Request(kPrompts, 0.9f, 3, 100), &samples).ok());
  EXPECT_EQ(Completions(samples), expected_samples->tokens);
  EXPECT_EQ(samples.finish_reasons_size(), 6);
}

TEST_F(RolloutServiceTest, WeightPushChangesOutputAndVersion) {
  v1::GenerateResponse before;
  ASSERT_TRUE(Generate(Request(kPrompts, 0), &before).ok());

  auto other = LoadModel();
  other->InitWeights(1234);
  v1::LoadWeightsResponse loaded;
  grpc::Status status = Push(ToChunks(*other, /*version=*/7), &loaded);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(loaded.version(), 7);
  EXPECT_EQ(loaded.tensors(), static_cast<int64_t>(other->named_parameters().size()));

  model::SamplingParams greedy;
  greedy.max_new_tokens = 8;
  greedy.greedy = true;
  const std::vector<uint64_t> zero_seeds = {0, 0};
  auto expected = model::Generate(*other, kPrompts, greedy, zero_seeds);
  ASSERT_TRUE(expected.ok());
  v1::GenerateResponse after;
  ASSERT_TRUE(Generate(Request(kPrompts, 0), &after).ok());
  EXPECT_EQ(after.policy_version(), 7);
  EXPECT_EQ(Completions(after), expected->tokens);
  EXPECT_NE(Completions(after), Completions(before));

  // The stream's version is served as it is, 0 (an actor's initial weights) included.
  ASSERT_TRUE(Push(ToChunks(*other, /*version=*/0, /*chunk_bytes=*/1 << 20), &loaded).ok());
  EXPECT_EQ(loaded.version(), 0);

  const std::string metrics = HttpGet(runner_->metrics_port(), "/metrics");
  EXPECT_EQ(
      MetricValue(metrics, "rlhf_rpc_requests_total", {"method=\"LoadWeights\"", "code=\"OK\""}), 2)
      << metrics;
}

TEST_F(RolloutServiceTest, BadWeightPushKeepsTheOldWeightsServing) {
  v1::GenerateResponse before;
  ASSERT_TRUE(Generate(Request(kPrompts, 0), &before).ok());
  auto other = LoadModel();
  other->InitWeights(99);
  const std::vector<v1::WeightChunk> good = ToChunks(*other, 5);

  auto expect_rejected = [&](std::vector<v1::WeightChunk> chunks, const std::string& mention) {
    v1::LoadWeightsResponse response;
    grpc::Status status = Push(chunks, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find(mention), std::string::npos) << status.error_message();
  };

  // Wrong shape on the last tensor: everything before it was already assembled.
  std::vector<v1::WeightChunk> wrong_shape = good;
  size_t last_first = 0;
  for (size_t i = 0; i < wrong_shape.size(); ++i) {
    if (!wrong_shape[i].name().empty()) last_first = i;
  }
  const std::string victim = wrong_shape[last_first].name();
  wrong_shape[last_first].set_shape(0, wrong_shape[last_first].shape(0) + 1);
  expect_rejected(wrong_shape, "'" + victim + "': shape");

  std::vector<v1::WeightChunk> unknown = good;
  unknown[0].set_name("transformer.h.99.mlp.c_fc.weight");
  expect_rejected(unknown, "transformer.h.99.mlp.c_fc.weight");

  std::vector<v1::WeightChunk> missing(good.begin(), good.begin() + last_first);
  expect_rejected(missing, "'" + victim + "' missing");

  std::vector<v1::WeightChunk> bad_dtype = good;
  bad_dtype[0].set_dtype(v1::DATA_TYPE_I64);
  expect_rejected(bad_dtype, "DATA_TYPE_I64");

  v1::GenerateResponse after;
  ASSERT_TRUE(Generate(Request(kPrompts, 0), &after).ok());
  EXPECT_EQ(after.policy_version(), 0);
  EXPECT_EQ(Completions(after), Completions(before));
}

TEST_F(RolloutServiceTest, BadGenerateRequestsAreInvalidArgument) {
  auto expect_invalid = [&](const v1::GenerateRequest& request, const std::string& mention) {
    v1::GenerateResponse response;
    grpc::Status status = Generate(request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find(mention), std::string::npos) << status.error_message();
  };
  expect_invalid(Request({{1, 501}}, 0), "501");
  v1::GenerateRequest bad_offsets = Request(kPrompts, 0);
  bad_offsets.mutable_prompts()->set_offsets(0, 1);
  expect_invalid(bad_offsets, "prompts");
  v1::GenerateRequest bad_top_p = Request(kPrompts, 1.0f);
  bad_top_p.mutable_sampling()->set_top_p(1.5f);
  expect_invalid(bad_top_p, "sampling");
  expect_invalid(Request({}, 0), "prompts");
  // A prompt past the model's context, asked for 64 times: refused before it is copied.
  expect_invalid(Request({std::vector<int64_t>(1 << 20, 1)}, 1.0f, /*n=*/64), "context");
  v1::GenerateResponse response;
  EXPECT_TRUE(Generate(Request(kPrompts, 0), &response).ok());
}

// Abandoned work stops: a Generate of 4096 completions x 200 tokens whose caller gives up
// after 300 ms stops at its next decode step, and the rollout answers the next call at once.
TEST_F(RolloutServiceTest, AnAbandonedGenerateStopsAndFreesTheRollout) {
  v1::GenerateRequest endless = Request({{1, 2, 3}}, 1.0f, /*n=*/kMaxCompletionsPerCall);
  endless.mutable_sampling()->set_max_new_tokens(200);
  v1::GenerateResponse response;
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(std::chrono::milliseconds(300)));
  EXPECT_EQ(stub_->Generate(&context, endless, &response).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);

  const auto start = std::chrono::steady_clock::now();
  v1::GenerateResponse after;
  grpc::Status status = Generate(Request(kPrompts, 0), &after);
  EXPECT_TRUE(status.ok()) << status.error_message();
  // Run to the end, the abandoned call would take minutes (200 steps of 4096 rows); one
  // step of it (the prefill) may still be running, and under a parallel CI load on 2
  // cores that step alone took 4.6 s: allow 10 s.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace rlhf::rollout
