// Chunked logprobs/entropy equal a plain log_softmax computation, values and gradients.

#include "common/model/token_logprobs.h"

#include "tests/unit/model/test_util.h"

namespace rlhf::model {
namespace {

using testing::MaxAbsDiff;

struct Plain {
  torch::Tensor logprobs;
  torch::Tensor entropy;
};

Plain PlainLogprobs(const torch::Tensor& logits, const torch::Tensor& targets, float temperature) {
  torch::Tensor logp = (logits / temperature).log_softmax(-1);
  return {logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1), -(logp.exp() * logp).sum(-1)};
}

TEST(ChunkedLogprobsTest, ValuesAndGradientsEqualPlainComputation) {
  torch::manual_seed(3);
  for (float temperature : {1.0f, 0.7f}) {
    torch::Tensor hidden = torch::randn({37, 16}, torch::requires_grad());
    torch::Tensor weight = torch::randn({50, 16}, torch::requires_grad());
    torch::Tensor targets = torch::randint(0, 50, {37}, torch::kInt64);
    torch::Tensor a = torch::randn({37});
    torch::Tensor b = torch::randn({37});

    TokenLogprobsOptions options;
    options.chunk_tokens = 8;  // 37 rows: 4 full chunks and a partial one
    options.temperature = temperature;
    auto [logprobs, entropy] = ChunkedLogprobsAndEntropy(hidden, weight, targets, options);
    ((logprobs * a).sum() + (entropy * b).sum()).backward();
    torch::Tensor grad_hidden = hidden.grad().clone();
    torch::Tensor grad_weight = weight.grad().clone();
    hidden.mutable_grad().zero_();
    weight.mutable_grad().zero_();

    Plain plain = PlainLogprobs(torch::matmul(hidden, weight.t()), targets, temperature);
    ((plain.logprobs * a).sum() + (plain.entropy * b).sum()).backward();
    EXPECT_LE(MaxAbsDiff(logprobs, plain.logprobs), 1e-5f);
    EXPECT_LE(MaxAbsDiff(entropy, plain.entropy), 1e-5f);
    EXPECT_LE(MaxAbsDiff(grad_hidden, hidden.grad()), 1e-5f);
    EXPECT_LE(MaxAbsDiff(grad_weight, weight.grad()), 1e-5f);
  }
}

TEST(ChunkedLogprobsTest, OnlyLogprobsUsedAndFrozenWeight) {
  torch::manual_seed(4);
  torch::Tensor hidden = torch::randn({10, 8}, torch::requires_grad());
  torch::Tensor weight = torch::randn({20, 8});  // frozen lm_head
  torch::Tensor targets = torch::randint(0, 20, {10}, torch::kInt64);
  TokenLogprobsOptions options;
  options.chunk_tokens = 3;
  options.compute_entropy = false;
  auto [logprobs, entropy] = ChunkedLogprobsAndEntropy(hidden, weight, targets, options);
  EXPECT_TRUE(torch::all(entropy == 0).item<bool>());
  logprobs.sum().backward();
  Plain plain = PlainLogprobs(torch::matmul(hidden, weight.t()), targets, 1.0f);
  torch::Tensor expected = torch::autograd::grad({plain.logprobs.sum()}, {hidden})[0];
  EXPECT_LE(MaxAbsDiff(hidden.grad(), expected), 1e-5f);
}

TEST(TokenLogprobsTest, ModelLogprobsMatchFullLogitsAndTrain) {
  for (const std::string& name : testing::CausalModelNames()) {
    LoadOptions options;
    options.value_head = true;
    auto model = testing::LoadOrDie(name, options);
    ASSERT_NE(model, nullptr);
    const auto prompts = testing::GoldenPrompts();
    // Right-padded batch of the three prompts (training batches pad on the right).
    const int64_t width = prompts[2].size();
    torch::Tensor ids = torch::zeros({3, width}, torch::kInt64);
    torch::Tensor mask = torch::zeros({3, width}, torch::kInt64);
    for (int64_t i = 0; i < 3; ++i) {
      const int64_t n = prompts[i].size();
      ids[i].slice(0, 0, n).copy_(torch::tensor(prompts[i]));
      mask[i].slice(0, 0, n).fill_(1);
    }
    TokenLogprobsOptions chunked;
    chunked.chunk_tokens = 7;
    auto out = ComputeTokenLogprobs(*model, ids, mask, chunked);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->logprobs.sizes(), (std::vector<int64_t>{3, width - 1}));
    ASSERT_EQ(out->values.sizes(), (std::vector<int64_t>{3, width}));
    torch::Tensor loss_mask = mask.slice(1, 1).to(torch::kFloat32);
    torch::Tensor loss = (out->logprobs * loss_mask).sum() + (out->entropy * loss_mask).sum() +
                         (out->values * mask).sum();
    model->zero_grad();
    loss.backward();
    torch::Tensor embedding = model->decoder().EmbeddingWeight();
    torch::Tensor chunked_grad = embedding.grad().clone();
    EXPECT_GT(chunked_grad.abs().sum().item<float>(), 0.0f) << name;

    // The same through full logits.
    model->zero_grad();
    auto logits = model->Forward(ids, mask);
    ASSERT_TRUE(logits.ok());
    Plain plain = PlainLogprobs(logits->slice(1, 0, width - 1), ids.slice(1, 1), 1.0f);
    torch::Tensor hidden = *model->HiddenStates(ids, mask);
    torch::Tensor plain_loss = (plain.logprobs * loss_mask).sum() +
                               (plain.entropy * loss_mask).sum() +
                               (model->Values(hidden) * mask).sum();
    plain_loss.backward();
    EXPECT_LE(MaxAbsDiff(out->logprobs * loss_mask, plain.logprobs * loss_mask), 1e-5f) << name;
    EXPECT_LE(MaxAbsDiff(out->entropy * loss_mask, plain.entropy * loss_mask), 1e-5f) << name;
    EXPECT_LE(MaxAbsDiff(chunked_grad, embedding.grad()), 1e-4f) << name;
  }
}

TEST(TokenLogprobsTest, BadInputIsAnError) {
  auto model = testing::LoadOrDie("gpt2");
  ASSERT_NE(model, nullptr);
  EXPECT_FALSE(ComputeTokenLogprobs(*model, testing::Ids({5}), {}).ok());
  EXPECT_FALSE(ComputeTokenLogprobs(*model, testing::Ids({5, 9999}), {}).ok());
  EXPECT_FALSE(
      ComputeTokenLogprobs(*model, testing::Ids({5, 6}), torch::ones({1, 3}, torch::kInt64)).ok());
}

}  // namespace
}  // namespace rlhf::model
