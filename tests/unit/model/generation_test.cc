// Generation: seeded sampling, batch independence, stopping, warpers, and bad requests.

#include "common/model/generation.h"

#include <cmath>

#include "tests/unit/model/test_util.h"

namespace rlhf::model {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using testing::GoldenPrompts;
using ::testing::HasSubstr;

SamplingParams Sampling() {
  SamplingParams params;
  params.max_new_tokens = 12;
  params.temperature = 0.8f;
  params.top_k = 40;
  params.top_p = 0.9f;
  return params;
}

class GenerationTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GenerationTest, SeededSamplingIsReproducibleAndIndependentOfBatchMates) {
  auto model = testing::LoadOrDie(GetParam());
  ASSERT_NE(model, nullptr);
  const auto prompts = GoldenPrompts();
  const std::vector<uint64_t> seeds = {11, 22, 33};
  auto first = Generate(*model, prompts, Sampling(), seeds);
  auto second = Generate(*model, prompts, Sampling(), seeds);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->tokens, second->tokens);
  EXPECT_EQ(first->logprobs, second->logprobs);
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto alone = Generate(*model, std::span(&prompts[i], 1), Sampling(), std::span(&seeds[i], 1));
    ASSERT_TRUE(alone.ok()) << alone.status();
    EXPECT_EQ(alone->tokens[0], first->tokens[i]) << "prompt " << i;
    ASSERT_EQ(alone->logprobs[0].size(), first->logprobs[i].size());
    for (size_t t = 0; t < alone->logprobs[0].size(); ++t) {
      EXPECT_NEAR(alone->logprobs[0][t], first->logprobs[i][t], 1e-4);
      EXPECT_LE(first->logprobs[i][t], 0.0f);
    }
  }
  // Same prompts, other seeds: another sample.
  auto other = Generate(*model, prompts, Sampling(), std::vector<uint64_t>{1, 2, 3});
  ASSERT_TRUE(other.ok());
  EXPECT_NE(other->tokens, first->tokens);
}

// A GRPO-shaped batch (each prompt repeated, its samples adjacent) prefills each distinct
// prompt once and copies its KV cache: the same samples as every row prefilling its own
// copy, with the same seeds (log-probs within fp32 rounding of a differently shaped
// prefill), for every architecture (GPT-2's Conv1D, Llama/Qwen2/Mistral's GQA caches).
TEST_P(GenerationTest, RepeatedPromptsSharePrefillWithTheSameSamples) {
  auto model = testing::LoadOrDie(GetParam());
  ASSERT_NE(model, nullptr);
  std::vector<std::vector<int64_t>> grouped;
  std::vector<uint64_t> seeds;
  for (const auto& prompt : GoldenPrompts()) {  // prompts of different lengths: left padding
    for (int k = 0; k < 3; ++k) {
      grouped.push_back(prompt);
      seeds.push_back(100 + seeds.size());
    }
  }
  SamplingParams own = Sampling();
  own.share_prompt_prefill = false;
  auto shared = Generate(*model, grouped, Sampling(), seeds);
  auto unshared = Generate(*model, grouped, own, seeds);
  ASSERT_TRUE(shared.ok()) << shared.status();
  ASSERT_TRUE(unshared.ok()) << unshared.status();
  EXPECT_EQ(shared->tokens, unshared->tokens);
  EXPECT_EQ(shared->finish_reasons, unshared->finish_reasons);
  for (size_t b = 0; b < grouped.size(); ++b) {
    ASSERT_EQ(shared->logprobs[b].size(), unshared->logprobs[b].size());
    for (size_t t = 0; t < shared->logprobs[b].size(); ++t) {
      EXPECT_NEAR(shared->logprobs[b][t], unshared->logprobs[b][t], 1e-4) << b << " " << t;
    }
  }
  // The samples of one prompt differ (their own seeds), as they must for a group baseline.
  EXPECT_NE(shared->tokens[0], shared->tokens[1]);
}

INSTANTIATE_TEST_SUITE_P(Models, GenerationTest, ::testing::ValuesIn(testing::CausalModelNames()));

TEST(GenerationStopTest, StopIdsAndEosEndOnlyTheirRow) {
  auto model = testing::LoadOrDie("gpt2");
  ASSERT_NE(model, nullptr);
  const auto prompts = GoldenPrompts();
  const nlohmann::json& golden = testing::Goldens()["models"]["gpt2"]["prompts"];
  const auto greedy0 = golden[0]["greedy"].get<std::vector<int64_t>>();
  const auto greedy1 = golden[1]["greedy"].get<std::vector<int64_t>>();
  SamplingParams params;
  params.greedy = true;
  params.max_new_tokens = 16;
  params.stop_ids = {greedy0[2]};  // prompt 0's third token
  const std::vector<uint64_t> seeds = {0, 0};
  std::vector<std::vector<int64_t>> two = {prompts[0], prompts[1]};
  auto out = Generate(*model, two, params, seeds);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->tokens[0], std::vector<int64_t>(greedy0.begin(), greedy0.begin() + 3));
  EXPECT_EQ(out->finish_reasons[0], FinishReason::kStop);
  // Row 1 keeps going (unless it meets the stop id itself).
  auto stop_at = std::find(greedy1.begin(), greedy1.end(), greedy0[2]);
  const size_t expected_len =
      stop_at == greedy1.end() ? greedy1.size() : (stop_at - greedy1.begin()) + 1;
  EXPECT_EQ(out->tokens[1], std::vector<int64_t>(greedy1.begin(), greedy1.begin() + expected_len));

  // EOS from generation_config.json wins over config.json's.
  model->set_generation_config({{"eos_token_id", {greedy0[1]}}});
  params.stop_ids.clear();
  out = Generate(*model, std::span(&prompts[0], 1), params, std::span(seeds.data(), 1));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(out->tokens[0], ElementsAre(greedy0[0], greedy0[1]));
  EXPECT_EQ(out->finish_reasons[0], FinishReason::kEos);
}

TEST(GenerationLogprobTest, LogprobsAreUnderTheFinalDistribution) {
  auto model = testing::LoadOrDie("llama");
  ASSERT_NE(model, nullptr);
  const auto prompts = GoldenPrompts();
  const std::vector<uint64_t> seed = {5};
  // Greedy: the model's own log-probability of the argmax token.
  SamplingParams greedy;
  greedy.greedy = true;
  greedy.max_new_tokens = 1;
  auto out = Generate(*model, std::span(&prompts[0], 1), greedy, seed);
  ASSERT_TRUE(out.ok());
  auto logits = model->Forward(testing::Ids(prompts[0]));
  ASSERT_TRUE(logits.ok());
  torch::Tensor expected = (*logits)[0][-1].log_softmax(-1)[out->tokens[0][0]];
  EXPECT_NEAR(out->logprobs[0][0], expected.item<float>(), 1e-5);
  // top_k = 1 leaves one token with probability 1: the argmax, logprob 0.
  SamplingParams top1 = Sampling();
  top1.top_k = 1;
  top1.max_new_tokens = 1;
  out = Generate(*model, std::span(&prompts[0], 1), top1, seed);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->tokens[0][0], (*logits)[0][-1].argmax().item<int64_t>());
  EXPECT_FLOAT_EQ(out->logprobs[0][0], 0.0f);
}

TEST(WarpLogitsTest, TopKAndTopPFollowTransformers) {
  torch::Tensor scores = torch::tensor({0.5f, 0.3f, 0.15f, 0.05f}).log().unsqueeze(0);
  auto kept = [&](SamplingParams params) {
    torch::Tensor warped = WarpLogits(scores.clone(), params)[0];
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < warped.size(0); ++i) {
      if (!std::isinf(warped[i].item<float>())) ids.push_back(i);
    }
    return ids;
  };
  SamplingParams params;
  params.top_k = 2;
  EXPECT_THAT(kept(params), ElementsAre(0, 1));
  params.top_k = 0;
  params.top_p = 0.75f;  // drops the tail with cumulative probability <= 0.25
  EXPECT_THAT(kept(params), ElementsAre(0, 1));
  params.top_p = 0.9f;
  EXPECT_THAT(kept(params), ElementsAre(0, 1, 2));
  params.top_p = 0.01f;  // always keeps the most likely token
  EXPECT_THAT(kept(params), ElementsAre(0));
  params.top_p = 1.0f;
  params.temperature = 0.5f;
  EXPECT_TRUE(torch::allclose(WarpLogits(scores.clone(), params), scores / 0.5f));
}

TEST(SelectNextTokensTest, DrawsFollowTheDistribution) {
  torch::Tensor probs = torch::tensor({0.5f, 0.3f, 0.15f, 0.05f});
  torch::Tensor logits = probs.log().unsqueeze(0).expand({1000, 4}).contiguous();
  std::vector<at::Generator> generators;
  for (uint64_t seed = 0; seed < 1000; ++seed) {
    generators.push_back(at::make_generator<at::CPUGeneratorImpl>(seed));
  }
  SamplingParams params;
  auto [tokens, logprobs] = SelectNextTokens(logits, params, generators);
  torch::Tensor counts = torch::bincount(tokens, {}, 4).to(torch::kFloat32) / 1000;
  EXPECT_LE((counts - probs).abs().max().item<float>(), 0.05f) << counts;
  EXPECT_TRUE(torch::allclose(logprobs, probs.log().index_select(0, tokens)));
}

TEST(GenerationErrorsTest, BadRequestsAreInvalidArgument) {
  auto model = testing::LoadOrDie("gpt2");  // n_positions 128
  ASSERT_NE(model, nullptr);
  SamplingParams params;
  params.max_new_tokens = 16;
  const std::vector<uint64_t> one_seed = {1};
  auto expect_error = [&](std::vector<std::vector<int64_t>> prompts, const SamplingParams& p,
                          std::span<const uint64_t> seeds, const std::string& words) {
    auto out = Generate(*model, prompts, p, seeds);
    ASSERT_FALSE(out.ok()) << words;
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(out.status().message(), HasSubstr(words));
  };
  // Prompt alone longer than the context, and prompt + max_new_tokens longer.
  expect_error({std::vector<int64_t>(200, 5)}, params, one_seed, "context of 128 tokens");
  expect_error({std::vector<int64_t>(120, 5)}, params, one_seed, "max_new_tokens 16");
  expect_error({}, params, {}, "no prompts");
  expect_error({{}}, params, one_seed, "prompt 0 is empty");
  expect_error({{1, 2}, {3}}, params, one_seed, "seeds");
  expect_error({{1, 512}}, params, one_seed, "outside the vocabulary");
  SamplingParams bad = params;
  bad.top_p = 0.0f;
  expect_error({{1, 2}}, bad, one_seed, "top_p");
  bad = params;
  bad.temperature = -1.0f;
  expect_error({{1, 2}}, bad, one_seed, "temperature");
  bad = params;
  bad.max_new_tokens = 0;
  expect_error({{1, 2}}, bad, one_seed, "max_new_tokens");
}

// A caller who gives up is noticed before the next decode step: the generation stops
// there (Cancelled, naming how far it got), and a caller who stays gets every step.
TEST(GenerationAbandonTest, StopsAtTheFirstStepAfterTheCallerGivesUp) {
  auto model = testing::LoadOrDie("gpt2");
  ASSERT_NE(model, nullptr);
  SamplingParams params;
  params.max_new_tokens = 50;
  params.greedy = true;
  const std::vector<uint64_t> seeds = {1};
  int polls = 0;
  auto out = Generate(*model, std::vector<std::vector<int64_t>>{{1, 2, 3}}, params, seeds,
                      [&] { return ++polls >= 3; });
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(out.status().message(), HasSubstr("after 3 of 50 steps"));
  EXPECT_EQ(polls, 3);

  polls = 0;
  params.max_new_tokens = 5;
  auto full = Generate(*model, std::vector<std::vector<int64_t>>{{1, 2, 3}}, params, seeds,
                       [&] { return ++polls > 100; });
  ASSERT_TRUE(full.ok()) << full.status();
  EXPECT_LE(polls, 4);  // polled between steps only
}

}  // namespace
}  // namespace rlhf::model
