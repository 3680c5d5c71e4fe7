// PolicyTrainer on the tiny fixture models: Evaluate equals ComputeTokenLogprobs, each
// algorithm's step moves the policy the way its loss says, bad input is refused.

#include "common/train/policy_trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/algo/grpo.h"
#include "common/model/token_logprobs.h"
#include "tests/unit/train/test_util.h"

namespace rlhf::train {
namespace {

using testing::ConfigFor;
using ::testing::HasSubstr;
using testing::LoadTrainerOrDie;
using testing::RandomBatch;

TEST(PolicyTrainerTest, EvaluateMatchesComputeTokenLogprobs) {
  for (const std::string name : {"gpt2", "llama"}) {
    auto trainer = LoadTrainerOrDie(name, /*value_head=*/true);
    ASSERT_NE(trainer, nullptr);
    SequenceBatch batch = RandomBatch(3, trainer->model().config().vocab_size, 7);
    auto result = trainer->Evaluate(batch, 0.7, /*values=*/true);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->logprobs.numel(), batch.num_response_tokens());
    EXPECT_EQ(result->values.numel(), batch.num_response_tokens());
    EXPECT_FALSE(result->logprobs.is_inference());

    // One row at a time, no padding at all.
    std::vector<torch::Tensor> logprobs, values, entropy;
    torch::InferenceMode guard;
    for (int64_t i = 0; i < batch.size(); ++i) {
      std::vector<int64_t> ids = batch.prompts[i];
      ids.insert(ids.end(), batch.responses[i].begin(), batch.responses[i].end());
      if (ids.size() < 2) ids.push_back(0);
      model::TokenLogprobsOptions options;
      options.temperature = 0.7f;
      auto out = model::ComputeTokenLogprobs(trainer->model(), torch::tensor(ids).unsqueeze(0), {},
                                             options);
      ASSERT_TRUE(out.ok());
      const int64_t start = batch.prompts[i].size() - 1;
      const int64_t n = batch.responses[i].size();
      logprobs.push_back(out->logprobs[0].slice(0, start, start + n));
      entropy.push_back(out->entropy[0].slice(0, start, start + n));
      values.push_back(out->values[0].slice(0, start, start + n));
    }
    EXPECT_TRUE(torch::allclose(result->logprobs, torch::cat(logprobs), 1e-5, 1e-5)) << name;
    EXPECT_TRUE(torch::allclose(result->entropy, torch::cat(entropy), 1e-5, 1e-5)) << name;
    EXPECT_TRUE(torch::allclose(result->values, torch::cat(values), 1e-5, 1e-5)) << name;
  }
}

TEST(PolicyTrainerTest, PpoStepRaisesPositiveAdvantageTokensAndLowersTheLoss) {
  auto trainer = LoadTrainerOrDie("gpt2", /*value_head=*/true);
  ASSERT_NE(trainer, nullptr);
  SequenceBatch batch = RandomBatch(4, 512, 11);
  auto old = trainer->Evaluate(batch, 1.0, true);
  ASSERT_TRUE(old.ok());
  // +1 on the first two rows' tokens, -1 on the others.
  const int64_t first_rows = batch.responses[0].size() + batch.responses[1].size();
  torch::Tensor advantages = -torch::ones({batch.num_response_tokens()});
  advantages.slice(0, 0, first_rows).fill_(1.0);
  PolicyGradientInputs inputs{
      batch, old->logprobs, advantages, old->values + advantages, old->values, {}};
  auto stats = trainer->TrainPolicyGradient(inputs, ConfigFor("ppo"));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(trainer->policy_version(), 1);
  for (const char* key :
       {"policy_loss", "value_loss", "entropy", "clip_fraction", "approx_kl", "grad_norm"}) {
    EXPECT_TRUE(stats->contains(key)) << key;
  }
  EXPECT_DOUBLE_EQ(stats->at("steps"), 1);
  auto after = trainer->Evaluate(batch, 1.0, true);
  ASSERT_TRUE(after.ok());
  torch::Tensor delta = after->logprobs - old->logprobs;
  EXPECT_GT(delta.slice(0, 0, first_rows).mean().item<double>(), 0);
  EXPECT_LT(delta.slice(0, first_rows).mean().item<double>(), 0);
  // The clipped surrogate on this batch (ratio 1 before the step: loss = -mean(A)) fell.
  const double before_loss = -advantages.mean().item<double>();
  const double after_loss = -(advantages * delta.exp()).mean().item<double>();
  EXPECT_LT(after_loss, before_loss);
  // The value head moved towards the returns.
  EXPECT_LT((after->values - (old->values + advantages)).pow(2).mean().item<double>(),
            advantages.pow(2).mean().item<double>());
}

// GRPO and RLOO train with the loss functions tests/golden checks against TRL (GrpoLoss,
// RlooLoss), not with PPO's: the first step's loss equals that function on the trainer's
// own log-probs (ratio 1, as old_logprobs are the policy's).
TEST(PolicyTrainerTest, GrpoAndRlooTrainWithTheirCheckedLosses) {
  for (const std::string algorithm : {"grpo", "rloo"}) {
    auto trainer = LoadTrainerOrDie("llama", /*value_head=*/false);
    ASSERT_NE(trainer, nullptr);
    SequenceBatch batch = RandomBatch(4, 512, 21);
    for (auto& response : batch.responses) {
      if (response.empty()) response.push_back(42);  // every row trains
    }
    auto old = trainer->Evaluate(batch);
    ASSERT_TRUE(old.ok());
    // One advantage per sequence, broadcast over its tokens (as the coordinator sends it).
    const std::vector<float> per_row = {1.5f, -0.5f, 0.25f, -1.0f};
    std::vector<float> flat;
    for (size_t i = 0; i < batch.responses.size(); ++i) {
      flat.insert(flat.end(), batch.responses[i].size(), per_row[i]);
    }
    const torch::Tensor advantages = torch::tensor(flat);
    // A reference a little off the policy, so GRPO's KL term is not zero.
    const torch::Tensor ref = old->logprobs + 0.1f;
    PolicyGradientInputs inputs{batch, old->logprobs, advantages, {}, {}, ref};
    const AlgorithmConfig config = ConfigFor(algorithm, [&](AlgorithmConfig& c) {
      c.clip_eps_high = 0.28;
      if (algorithm == "grpo") c.kl_coef = 0.04;
    });
    auto stats = trainer->TrainPolicyGradient(inputs, config);
    ASSERT_TRUE(stats.ok()) << stats.status();

    // The same loss from the golden-checked function on the padded grid.
    auto padded = BuildPaddedBatch(batch, 512, 0);
    ASSERT_TRUE(padded.ok());
    const torch::Tensor lp = *ScatterResponseTokens(old->logprobs, *padded, "lp");
    const torch::Tensor mask = padded->response_mask;
    const torch::Tensor adv = torch::tensor(per_row);
    double expected = 0;
    if (algorithm == "grpo") {
      algo::GrpoLossOptions o{
          .loss_type = algo::GrpoLossType::kBnpo, .beta = 0.04, .epsilon_high = 0.28};
      auto loss =
          algo::GrpoLoss({lp, lp, *ScatterResponseTokens(ref, *padded, "ref"), adv, mask}, o);
      ASSERT_TRUE(loss.ok()) << loss.status();
      expected = loss->loss.item<double>();
    } else {
      auto loss = algo::RlooLoss(lp, lp, adv, mask, 0.2, 0.28);
      ASSERT_TRUE(loss.ok()) << loss.status();
      expected = loss->loss.item<double>();
    }
    EXPECT_NEAR(stats->at("loss"), expected, 1e-5) << algorithm;
    EXPECT_NEAR(stats->at("policy_loss"), expected, 1e-5) << algorithm;
  }
}

TEST(PolicyTrainerTest, GrpoWithKlEpochsAndMinibatchesCountsSteps) {
  auto trainer = LoadTrainerOrDie("llama", /*value_head=*/false);
  ASSERT_NE(trainer, nullptr);
  SequenceBatch batch = RandomBatch(5, 512, 3);
  auto old = trainer->Evaluate(batch);
  ASSERT_TRUE(old.ok());
  torch::Tensor advantages = torch::randn({batch.num_response_tokens()});
  PolicyGradientInputs inputs{batch, old->logprobs, advantages, {}, {}, old->logprobs};
  auto stats = trainer->TrainPolicyGradient(inputs, ConfigFor("grpo", [](AlgorithmConfig& c) {
                                              c.ppo_epochs = 2;
                                              c.num_minibatches = 2;
                                              c.kl_coef = 0.04;
                                              c.aggregation = algo::LossAggregation::kSequenceMean;
                                            }));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(trainer->policy_version(), 4);
  EXPECT_DOUBLE_EQ(stats->at("steps"), 4);
  EXPECT_TRUE(stats->contains("kl"));
  EXPECT_FALSE(stats->contains("value_loss"));
}

// Summed response logprobs per row.
torch::Tensor SequenceLogprobs(PolicyTrainer& trainer, const SequenceBatch& batch, bool average) {
  auto result = trainer.Evaluate(batch);
  EXPECT_TRUE(result.ok()) << result.status();
  std::vector<double> sums;
  int64_t offset = 0;
  for (const auto& response : batch.responses) {
    const int64_t n = response.size();
    double sum = result->logprobs.slice(0, offset, offset + n).sum().item<double>();
    sums.push_back(average ? sum / std::max<int64_t>(n, 1) : sum);
    offset += n;
  }
  return torch::tensor(sums, torch::kFloat32);
}

TEST(PolicyTrainerTest, PreferenceStepsWidenTheChosenRejectedMargin) {
  for (const std::string algorithm :
       {"dpo", "ipo", "cdpo", "robust_dpo", "hinge", "simpo", "orpo"}) {
    auto trainer = LoadTrainerOrDie("gpt2", /*value_head=*/false);
    ASSERT_NE(trainer, nullptr);
    PreferenceInputs inputs;
    inputs.chosen = RandomBatch(3, 512, 21);
    inputs.rejected = inputs.chosen;
    SequenceBatch other = RandomBatch(3, 512, 22);
    inputs.rejected.responses = other.responses;
    inputs.rejected.responses[1].push_back(9);  // no empty response
    inputs.chosen.responses[1].push_back(8);
    const bool average = algorithm == "simpo" || algorithm == "orpo";
    inputs.ref_chosen_logprobs = SequenceLogprobs(*trainer, inputs.chosen, false);
    inputs.ref_rejected_logprobs = SequenceLogprobs(*trainer, inputs.rejected, false);
    const torch::Tensor margin_before = SequenceLogprobs(*trainer, inputs.chosen, average) -
                                        SequenceLogprobs(*trainer, inputs.rejected, average);
    auto stats = trainer->TrainPreference(inputs, ConfigFor(algorithm));
    ASSERT_TRUE(stats.ok()) << algorithm << ": " << stats.status();
    EXPECT_EQ(trainer->policy_version(), 1);
    const torch::Tensor margin_after = SequenceLogprobs(*trainer, inputs.chosen, average) -
                                       SequenceLogprobs(*trainer, inputs.rejected, average);
    EXPECT_GT((margin_after - margin_before).mean().item<double>(), 0) << algorithm;
  }
}

TEST(PolicyTrainerTest, SftStepLowersNll) {
  auto trainer = LoadTrainerOrDie("llama", /*value_head=*/false);
  ASSERT_NE(trainer, nullptr);
  SequenceBatch batch = RandomBatch(4, 512, 5);
  const double before = -trainer->Evaluate(batch)->logprobs.mean().item<double>();
  auto stats = trainer->TrainSft(batch, ConfigFor("sft"));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_NEAR(stats->at("loss"), before, 1e-4);
  const double after = -trainer->Evaluate(batch)->logprobs.mean().item<double>();
  EXPECT_LT(after, before);
}

// The step's optimizer settings come from the config (what a Train call carries), not from
// how the trainer was built: the same config trains the same on any actor.
TEST(PolicyTrainerTest, StepOptimizerSettingsComeFromTheConfig) {
  SequenceBatch batch = RandomBatch(4, 512, 5);
  const OptimizerOptions tuned{.learning_rate = 1e-3,
                               .beta1 = 0.5,
                               .beta2 = 0.9,
                               .eps = 1e-3,
                               .weight_decay = 0.5,
                               .max_grad_norm = 0.25};
  auto step = [&](const std::optional<OptimizerOptions>& optimizer, OptimizerOptions built) {
    TrainerOptions options;
    options.optimizer = built;
    auto trainer = PolicyTrainer::Load(testing::ModelDir("llama"), /*value_head=*/false, options);
    EXPECT_TRUE(trainer.ok()) << trainer.status();
    if (!trainer.ok()) return torch::Tensor();
    // Two steps: Adam's first step does not depend on its betas (bias correction).
    for (int i = 0; i < 2; ++i) {
      auto stats = (*trainer)->TrainSft(
          batch, ConfigFor("sft", [&](AlgorithmConfig& c) { c.optimizer = optimizer; }));
      EXPECT_TRUE(stats.ok()) << stats.status();
    }
    return (*trainer)->NamedWeights(false)[0].second.clone();
  };
  // Built with the defaults but told `tuned` == built with `tuned` and told nothing.
  const torch::Tensor told = step(tuned, OptimizerOptions{});
  const torch::Tensor built = step(std::nullopt, tuned);
  ASSERT_TRUE(told.defined() && built.defined());
  EXPECT_TRUE(torch::equal(told, built));
  // And it differs from the defaults in every field that matters.
  for (auto edit : std::vector<std::function<void(OptimizerOptions&)>>{
           [](OptimizerOptions& o) { o.weight_decay = 0; },
           [](OptimizerOptions& o) { o.beta1 = 0.9; }, [](OptimizerOptions& o) { o.beta2 = 0.999; },
           [](OptimizerOptions& o) { o.eps = 1e-8; },
           [](OptimizerOptions& o) { o.max_grad_norm = 1.0; }}) {
    OptimizerOptions other = tuned;
    edit(other);
    EXPECT_FALSE(torch::equal(step(other, OptimizerOptions{}), told));
  }
}

TEST(PolicyTrainerTest, BadInputIsRefusedAndChangesNothing) {
  auto trainer = LoadTrainerOrDie("gpt2", /*value_head=*/false);
  ASSERT_NE(trainer, nullptr);
  SequenceBatch batch = RandomBatch(2, 512, 5);
  const int64_t n = batch.num_response_tokens();
  const torch::Tensor before = trainer->NamedWeights(false)[0].second.clone();
  const AlgorithmConfig ppo = ConfigFor("ppo");

  auto wrong_size =
      trainer->TrainPolicyGradient({batch, torch::zeros({n}), torch::zeros({n + 1})}, ppo);
  EXPECT_EQ(wrong_size.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong_size.status().message()), HasSubstr("advantages"));
  auto no_critic = trainer->TrainPolicyGradient(
      {batch, torch::zeros({n}), torch::zeros({n}), torch::zeros({n}), torch::zeros({n})}, ppo);
  EXPECT_THAT(std::string(no_critic.status().message()), HasSubstr("no value head"));
  auto wrong_kind = trainer->TrainSft(batch, ppo);
  EXPECT_EQ(wrong_kind.status().code(), absl::StatusCode::kInvalidArgument);
  auto no_ref = trainer->TrainPreference({batch, batch, {}, {}}, ConfigFor("dpo"));
  EXPECT_THAT(std::string(no_ref.status().message()), HasSubstr("ref_chosen_logprobs"));
  auto values = trainer->Evaluate(batch, 1.0, /*values=*/true);
  EXPECT_EQ(values.status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(trainer->policy_version(), 0);
  EXPECT_TRUE(torch::equal(trainer->NamedWeights(false)[0].second, before));
}

}  // namespace
}  // namespace rlhf::train
