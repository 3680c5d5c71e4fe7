// Our forward pass and greedy generation against transformers' (goldens made by
// tests/golden/make_model_goldens.py).

#include <iostream>

#include "common/model/generation.h"
#include "tests/unit/model/test_util.h"

namespace rlhf::model {
namespace {

using testing::GoldenPrompts;
using testing::Goldens;
using testing::GoldenTensor;
using testing::Ids;
using testing::MaxAbsDiff;

constexpr float kLogitTolerance = 1e-4f;

class CausalGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CausalGoldenTest, LogitsMatchTransformers) {
  const std::string name = GetParam();
  auto model = testing::LoadOrDie(name);
  ASSERT_NE(model, nullptr);
  const auto prompts = GoldenPrompts();
  const nlohmann::json& golden = Goldens()["models"][name]["prompts"];
  float worst = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto logits = model->Forward(Ids(prompts[i]));
    ASSERT_TRUE(logits.ok()) << logits.status();
    torch::Tensor all = logits->squeeze(0);
    const std::string key = name + "/prompt" + std::to_string(i);
    torch::Tensor positions = GoldenTensor(key + "/positions");
    torch::Tensor expected = GoldenTensor(key + "/logits");
    // Always includes the whole last position.
    ASSERT_EQ(positions[-1].item<int64_t>(), static_cast<int64_t>(prompts[i].size()) - 1);
    const float diff = MaxAbsDiff(all.index_select(0, positions), expected);
    worst = std::max(worst, diff);
    EXPECT_LE(diff, kLogitTolerance) << key;
    const double abs_sum = golden[i]["logits_abs_sum"].get<double>();
    EXPECT_NEAR(all.to(torch::kFloat64).sum().item<double>(), golden[i]["logits_sum"].get<double>(),
                1e-5 * abs_sum)
        << key;
    EXPECT_NEAR(all.to(torch::kFloat64).abs().sum().item<double>(), abs_sum, 1e-5 * abs_sum) << key;
  }
  std::cout << "[ golden ] " << name << " logits max abs diff vs transformers: " << worst << "\n";
}

TEST_P(CausalGoldenTest, GreedyMatchesTransformersAloneAndBatched) {
  const std::string name = GetParam();
  auto model = testing::LoadOrDie(name);
  ASSERT_NE(model, nullptr);
  // Left-padded batch of different lengths: same tokens as each prompt alone.
  const GenerationOutput batched = testing::ExpectGreedyMatchesGoldens(*model, name);
  ASSERT_EQ(batched.tokens.size(), testing::GoldenPrompts().size());
  for (size_t i = 0; i < batched.tokens.size(); ++i) {
    EXPECT_EQ(batched.finish_reasons[i], FinishReason::kLength);
    EXPECT_EQ(batched.logprobs[i].size(), batched.tokens[i].size());
  }
}

TEST_P(CausalGoldenTest, Bfloat16LoadsAndStaysClose) {
  const std::string name = GetParam();
  LoadOptions options;
  options.dtype = torch::kBFloat16;
  auto model = testing::LoadOrDie(name, options);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->dtype(), torch::kBFloat16);
  const auto prompts = GoldenPrompts();
  auto logits = model->Forward(Ids(prompts[0]));
  ASSERT_TRUE(logits.ok()) << logits.status();
  torch::Tensor expected = GoldenTensor(name + "/prompt0/logits");
  torch::Tensor positions = GoldenTensor(name + "/prompt0/positions");
  EXPECT_LE(MaxAbsDiff(logits->squeeze(0).index_select(0, positions), expected), 0.25f);
  SamplingParams params;
  params.max_new_tokens = 4;
  std::vector<uint64_t> seeds(prompts.size(), 1);
  auto out = Generate(*model, prompts, params, seeds);
  ASSERT_TRUE(out.ok()) << out.status();
}

INSTANTIATE_TEST_SUITE_P(Models, CausalGoldenTest,
                         ::testing::ValuesIn(testing::CausalModelNames()));

TEST(SequenceClassifierGoldenTest, ScoresMatchTransformers) {
  auto model = LoadSequenceClassifier(testing::ModelDir("llama-seqcls"));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->num_labels(), 1);
  const auto prompts = GoldenPrompts();
  const nlohmann::json& golden = Goldens()["models"]["llama-seqcls"];
  const int64_t batch = static_cast<int64_t>(prompts.size());
  int64_t width = 0;
  for (const auto& p : prompts) width = std::max<int64_t>(width, p.size());
  torch::Tensor expected = torch::empty({batch});
  float worst = 0;
  for (int64_t i = 0; i < batch; ++i) {
    auto score = (*model)->Score(Ids(prompts[i]));
    ASSERT_TRUE(score.ok()) << score.status();
    expected[i] = golden["prompts"][i]["score"][0].get<float>();
    worst = std::max(worst, std::abs(score->item<float>() - expected[i].item<float>()));
  }
  EXPECT_LE(worst, kLogitTolerance);
  // Right padding (as transformers pads) and left padding give the same scores.
  for (bool left : {false, true}) {
    torch::Tensor ids = torch::zeros({batch, width}, torch::kInt64);
    torch::Tensor mask = torch::zeros({batch, width}, torch::kInt64);
    for (int64_t i = 0; i < batch; ++i) {
      const int64_t n = prompts[i].size();
      const int64_t start = left ? width - n : 0;
      ids[i].slice(0, start, start + n).copy_(torch::tensor(prompts[i]));
      mask[i].slice(0, start, start + n).fill_(1);
    }
    auto scores = (*model)->Score(ids, mask);
    ASSERT_TRUE(scores.ok()) << scores.status();
    const float diff = MaxAbsDiff(scores->squeeze(-1), expected);
    worst = std::max(worst, diff);
    EXPECT_LE(diff, kLogitTolerance) << (left ? "left" : "right");
  }
  std::cout << "[ golden ] llama-seqcls scores max abs diff vs transformers: " << worst << "\n";
}

}  // namespace
}  // namespace rlhf::model
