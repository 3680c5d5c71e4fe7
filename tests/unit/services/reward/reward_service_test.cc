// RewardService behind real gRPC on loopback: the llama-seqcls fixture reward model and
// the built-in scorers.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/model/loader.h"
#include "common/rpc/tensor_codec.h"
#include "common/server/server_runner.h"
#include "services/reward/reward_service.h"
#include "tests/unit/server/server_test_util.h"

namespace rlhf::reward {
namespace {

using server::testing::DeadlineIn;
using server::testing::HttpGet;
using server::testing::LoopbackChannel;
using server::testing::LoopbackOptions;
using server::testing::MetricValue;

constexpr char kModelDir[] = RLHF_SOURCE_DIR "/tests/golden/fixtures/models/llama-seqcls";

v1::ScoreRequest TokenRequest(const std::vector<std::vector<int64_t>>& prompts,
                              const std::vector<std::vector<int64_t>>& responses) {
  v1::ScoreRequest request;
  rpc::TokensToProto(prompts, request.mutable_batch()->mutable_prompts());
  rpc::TokensToProto(responses, request.mutable_batch()->mutable_responses());
  return request;
}

v1::ScoreRequest TextRequest(const std::vector<std::string>& responses,
                             const std::vector<std::string>& references = {}) {
  v1::ScoreRequest request;
  for (const auto& text : responses) request.add_response_texts(text);
  for (const auto& text : references) request.add_references(text);
  return request;
}

class RewardServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    runner_ = std::make_unique<server::ServerRunner>(LoopbackOptions());
    service_ = std::make_unique<RewardService>(runner_->Executor("rlhf.v1.RewardService"));
    runner_->AddService(service_.get());
    ASSERT_TRUE(runner_->Start().ok());
    runner_->SetServing(true);
    stub_ = v1::RewardService::NewStub(LoopbackChannel(runner_->port()));
  }
  void TearDown() override {
    stub_.reset();  // the server drains until client channels close
    runner_->Shutdown();
  }

  grpc::Status Call(const v1::ScoreRequest& request, std::vector<float>* scores) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(std::chrono::seconds(30)));
    v1::ScoreResponse response;
    grpc::Status status = stub_->Score(&context, request, &response);
    scores->assign(response.scores().begin(), response.scores().end());
    return status;
  }

  void ExpectInvalid(const v1::ScoreRequest& request, const std::string& mention) {
    std::vector<float> scores;
    grpc::Status status = Call(request, &scores);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_NE(status.error_message().find(mention), std::string::npos) << status.error_message();
  }

  std::unique_ptr<server::ServerRunner> runner_;
  std::unique_ptr<RewardService> service_;
  std::unique_ptr<v1::RewardService::Stub> stub_;
};

TEST_F(RewardServiceTest, ModelScoresEqualTheClassifierOnEachUnpaddedSequence) {
  auto model = model::LoadSequenceClassifier(kModelDir);
  ASSERT_TRUE(model.ok()) << model.status();
  service_->SetScorer(MakeModelScorer(*model));
  const std::vector<std::vector<int64_t>> prompts = {{5, 17, 42}, {7}, {100, 200}};
  const std::vector<std::vector<int64_t>> responses = {{9, 11}, {3, 4, 5, 6}, {}};
  std::vector<float> scores;
  grpc::Status status = Call(TokenRequest(prompts, responses), &scores);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(scores.size(), 3u);

  auto reference = model::LoadSequenceClassifier(kModelDir);
  ASSERT_TRUE(reference.ok());
  torch::InferenceMode inference;
  for (size_t b = 0; b < prompts.size(); ++b) {
    std::vector<int64_t> ids = prompts[b];
    ids.insert(ids.end(), responses[b].begin(), responses[b].end());
    auto direct = (*reference)->Score(torch::tensor(ids).unsqueeze(0));
    ASSERT_TRUE(direct.ok());
    EXPECT_NEAR(scores[b], (*direct)[0][0].item<float>(), 1e-5) << "sequence " << b;
  }

  ExpectInvalid(TokenRequest({{1, 2}}, {{512}}), "outside the vocabulary");
  ExpectInvalid(TokenRequest({{1, 2}, {3}}, {{4}}), "2 prompts but 1 responses");
  v1::ScoreRequest bad_offsets = TokenRequest({{1, 2}}, {{3}});
  bad_offsets.mutable_batch()->mutable_responses()->add_offsets(9);
  ExpectInvalid(bad_offsets, "batch.responses");
  EXPECT_TRUE(Call(TokenRequest({{1, 2}}, {{3}}), &scores).ok());
}

TEST_F(RewardServiceTest, ExactMatchComparesTrimmedText) {
  service_->SetScorer(MakeExactMatchScorer());
  std::vector<float> scores;
  ASSERT_TRUE(Call(TextRequest({" 42\n", "41", "42"}, {"42", "42", " 42 "}), &scores).ok());
  EXPECT_EQ(scores, (std::vector<float>{1, 0, 1}));
  ExpectInvalid(TextRequest({"a", "b"}, {"a"}), "one reference per response");
  v1::ScoreRequest mismatched = TokenRequest({{1}, {2}}, {{3}, {4}});
  mismatched.add_response_texts("a");
  mismatched.add_references("a");
  ExpectInvalid(mismatched, "2 responses but 1 response_texts");
}

TEST_F(RewardServiceTest, RegexScoresWhetherTheResponseContainsAMatch) {
  auto scorer = MakeRegexScorer(R"(answer:\s*\d+)");
  ASSERT_TRUE(scorer.ok());
  service_->SetScorer(std::move(*scorer));
  std::vector<float> scores;
  ASSERT_TRUE(Call(TextRequest({"so the answer: 12.", "no idea", "answer:x"}), &scores).ok());
  EXPECT_EQ(scores, (std::vector<float>{1, 0, 0}));
  auto bad = MakeRegexScorer("(unclosed");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("(unclosed"), std::string::npos) << bad.status();
}

TEST_F(RewardServiceTest, LengthScoresDistanceToTheTarget) {
  auto scorer = MakeLengthScorer(4);
  ASSERT_TRUE(scorer.ok());
  service_->SetScorer(std::move(*scorer));
  std::vector<float> scores;
  ASSERT_TRUE(
      Call(TokenRequest({{1}, {1}, {1}}, {{1, 2, 3, 4}, {1, 2}, {1, 2, 3, 4, 5, 6, 7, 8}}), &scores)
          .ok());
  EXPECT_EQ(scores, (std::vector<float>{0, -0.5f, -1}));
  ASSERT_TRUE(Call(TextRequest({"abcd", "abcdef"}), &scores).ok());
  EXPECT_EQ(scores, (std::vector<float>{0, -0.5f}));
  EXPECT_FALSE(MakeLengthScorer(0).ok());

  const std::string metrics = HttpGet(runner_->metrics_port(), "/metrics");
  EXPECT_EQ(MetricValue(metrics, "rlhf_rpc_requests_total",
                        {"service=\"rlhf.v1.RewardService\"", "method=\"Score\"", "code=\"OK\""}),
            2)
      << metrics;
}

// A request carrying its job's reward spec is scored as the job says, whatever the
// server was started with; a spec the server cannot honour is refused, not ignored.
TEST_F(RewardServiceTest, TheJobsRewardSpecDecides) {
  auto length = MakeLengthScorer(4);  // the server's own flags
  ASSERT_TRUE(length.ok());
  service_->SetScorer(std::move(*length));
  v1::ScoreRequest request = TextRequest({"the answer: 7", "abcd"});
  std::vector<float> scores;
  ASSERT_TRUE(Call(request, &scores).ok());
  EXPECT_EQ(scores[1], 0);  // length scorer: 4 bytes on target

  v1::RewardSpec* spec = request.mutable_reward();
  spec->set_kind("regex");
  spec->set_pattern(R"(answer:\s*\d+)");
  spec->set_match_reward(2.5);
  spec->set_mismatch_reward(-1);
  ASSERT_TRUE(Call(request, &scores).ok());
  EXPECT_EQ(scores, (std::vector<float>{2.5f, -1.0f}));

  spec->set_kind("length");
  spec->set_target_length(2);
  ASSERT_TRUE(Call(request, &scores).ok());
  EXPECT_EQ(scores[1], -1.0f);  // 4 bytes against a target of 2

  spec->set_kind("regex");
  spec->set_pattern("");
  ExpectInvalid(request, "reward.pattern");
  spec->set_kind("model");
  grpc::Status status = Call(request, &scores);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("--model"), std::string::npos) << status.error_message();
}

// One MakeScorer(RewardSpec) for `rlhf local`, the server's flags and per-request specs.
TEST(MakeScorerTest, FromSpec) {
  v1::RewardSpec spec;
  spec.set_kind("exact_match");
  spec.set_match_reward(3);
  spec.set_mismatch_reward(-2);
  auto scorer = MakeScorer(spec, "");
  ASSERT_TRUE(scorer.ok()) << scorer.status();
  auto scores = (*scorer)->Score(TextRequest({"42", "41"}, {"42", "42"}));
  ASSERT_TRUE(scores.ok());
  EXPECT_EQ(*scores, (std::vector<float>{3, -2}));
  spec.set_kind("model");
  EXPECT_EQ(MakeScorer(spec, "").status().code(), absl::StatusCode::kInvalidArgument);
  auto model = MakeScorer(spec, kModelDir);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->name(), "model");
  spec.set_kind("magic");
  EXPECT_NE(MakeScorer(spec, "").status().message().find("magic"), std::string::npos);
}

}  // namespace
}  // namespace rlhf::reward
