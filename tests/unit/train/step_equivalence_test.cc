// How a step runs must not change what it computes: a minibatch cut into micro-batches
// by token budget (gradient accumulation) and layer recomputation in backward (gradient
// checkpointing) end the step with the same weights as the plain step, within 1e-5, for
// every algorithm's loss; bf16-mixed precision keeps float32 master weights and optimizer
// state and stays close to the float32 step.

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "common/train/micro_batches.h"
#include "common/train/policy_trainer.h"
#include "tests/unit/train/test_util.h"

namespace rlhf::train {
namespace {

using testing::ConfigFor;
using testing::LoadTrainerOrDie;
using testing::RandomBatch;

// The largest |a - b| over every parameter of two trainers.
double MaxWeightDifference(const PolicyTrainer& a, const PolicyTrainer& b) {
  auto wa = a.NamedWeights(/*include_value_head=*/true);
  auto wb = b.NamedWeights(/*include_value_head=*/true);
  EXPECT_EQ(wa.size(), wb.size());
  double worst = 0;
  for (size_t i = 0; i < wa.size() && i < wb.size(); ++i) {
    EXPECT_EQ(wa[i].first, wb[i].first);
    worst = std::max(worst, (wa[i].second - wb[i].second).abs().max().item<double>());
  }
  return worst;
}

// The fixture with the same fresh value head every time.
std::unique_ptr<PolicyTrainer> LoadSeeded(const std::string& model, bool value_head) {
  torch::manual_seed(0);
  return LoadTrainerOrDie(model, value_head);
}

// The cosine between the updates start -> a and start -> b over every parameter.
double StepCosine(const PolicyTrainer& start, const PolicyTrainer& a, const PolicyTrainer& b) {
  auto w0 = start.NamedWeights(true), wa = a.NamedWeights(true), wb = b.NamedWeights(true);
  std::vector<torch::Tensor> da, db;
  for (size_t i = 0; i < w0.size(); ++i) {
    da.push_back((wa[i].second - w0[i].second).flatten().to(torch::kDouble));
    db.push_back((wb[i].second - w0[i].second).flatten().to(torch::kDouble));
  }
  const torch::Tensor x = torch::cat(da), y = torch::cat(db);
  return (x.dot(y) / (x.norm() * y.norm())).item<double>();
}

// Sequences of varied lengths, every response non-empty.
SequenceBatch VariedBatch(int64_t rows, uint32_t seed) {
  SequenceBatch batch = RandomBatch(rows, 512, seed);
  for (auto& response : batch.responses) {
    if (response.empty()) response.push_back(7);
  }
  return batch;
}

// One Train call of `algorithm` on `trainer` (inputs built from its own Evaluate; with
// `omit_old_logprobs`, a policy-gradient batch without them: one on-policy step). The
// rollout's sampling log-probs (read with tis_cap) are the evaluated ones minus
// `rollout_shift`; NaN leaves them out.
absl::StatusOr<TrainStats> Step(PolicyTrainer& trainer, const std::string& algorithm,
                                const AlgorithmConfig& config, bool omit_old_logprobs = false,
                                float rollout_shift = 0) {
  const SequenceBatch batch = VariedBatch(6, 31);
  if (algorithm == "sft") return trainer.TrainSft(batch, config);
  if (algorithm == "kto") {
    UnpairedInputs in;
    in.batch = batch;
    in.kl_batch = VariedBatch(6, 32);
    in.desirable = {true, false, true, true, false, false};
    in.ref_logprobs = torch::linspace(-30, -10, 6);
    in.ref_kl_logprobs = torch::linspace(-25, -12, 6);
    return trainer.TrainKto(in, config);
  }
  if (BatchKindOf(config.algorithm) == BatchKind::kPreference) {
    PreferenceInputs in;
    in.chosen = batch;
    in.rejected = batch;
    in.rejected.responses = VariedBatch(6, 33).responses;
    in.ref_chosen_logprobs = torch::linspace(-30, -10, 6);
    in.ref_rejected_logprobs = torch::linspace(-20, -15, 6);
    return trainer.TrainPreference(in, config);
  }
  auto old = trainer.Evaluate(batch, config.temperature, trainer.model().has_value_head(),
                              config.precision);
  if (!old.ok()) return old.status();
  torch::manual_seed(5);  // the same advantages for every trainer
  const torch::Tensor advantages = torch::randn({batch.num_response_tokens()});
  PolicyGradientInputs in{batch, old->logprobs, advantages, {}, {}, old->logprobs - 0.05f};
  if (algorithm == "ppo") {
    in.returns = old->values + advantages;
    in.old_values = old->values;
    in.ref_logprobs = torch::Tensor();
  }
  if (!std::isnan(rollout_shift)) in.rollout_logprobs = old->logprobs - rollout_shift;
  if (omit_old_logprobs) in.old_logprobs = torch::Tensor();
  return trainer.TrainPolicyGradient(in, config);
}

struct Case {
  std::string algorithm;
  std::string model;
  algo::LossAggregation aggregation = algo::LossAggregation::kTokenMean;
};

std::vector<Case> EveryLoss() {
  return {{"ppo", "gpt2"},
          {"ppo", "llama", algo::LossAggregation::kSequenceMean},
          {"grpo", "llama"},
          {"grpo", "gpt2", algo::LossAggregation::kSequenceMean},
          {"grpo", "llama", algo::LossAggregation::kConstantNormalizer},
          {"rloo", "gpt2"},
          {"sft", "llama"},
          {"dpo", "gpt2"},
          {"ipo", "llama"},
          {"simpo", "gpt2"},
          {"orpo", "llama"},
          {"kto", "gpt2"}};
}

// AdamW with eps 0.1 and lr 0.1: an update is a bounded, smooth function of the gradient
// (the first is 0.1 g / (|g| + 0.1)), so equal weights mean equal gradients. With the
// usual eps 1e-8, a gradient that cancels to ~0 has its float32 rounding noise amplified
// by lr / eps, which would hide the comparison (either way of running the step).
OptimizerOptions SmoothAdam() { return OptimizerOptions{.learning_rate = 0.1, .eps = 0.1}; }

AlgorithmConfig ConfigOf(const Case& c, const std::function<void(AlgorithmConfig&)>& edit) {
  return ConfigFor(c.algorithm, [&](AlgorithmConfig& config) {
    config.optimizer = SmoothAdam();
    config.num_minibatches = 2;  // 3 rows per optimizer step
    config.aggregation = c.aggregation;
    config.entropy_coef = c.algorithm == "ppo" ? 0.01 : 0.0;
    if (c.algorithm == "grpo") config.kl_coef = 0.04;
    edit(config);
  });
}

void ExpectSameStep(const Case& c, const std::function<void(AlgorithmConfig&)>& edit) {
  SCOPED_TRACE(c.algorithm + " on " + c.model + ", aggregation " +
               std::to_string(static_cast<int>(c.aggregation)));
  const bool value_head = c.algorithm == "ppo";
  auto plain = LoadSeeded(c.model, value_head);
  auto changed = LoadSeeded(c.model, value_head);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(changed, nullptr);
  auto a = Step(*plain, c.algorithm, ConfigOf(c, [](AlgorithmConfig&) {}));
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = Step(*changed, c.algorithm, ConfigOf(c, edit));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->at("steps"), 2);
  EXPECT_EQ(b->at("steps"), 2);
  // Relative beyond 1: float32 rounding of a loss of ~100 (IPO) is ~1e-5 by itself.
  EXPECT_NEAR(a->at("loss"), b->at("loss"), 1e-5 * std::max(1.0, std::abs(a->at("loss"))));
  EXPECT_NEAR(a->at("grad_norm"), b->at("grad_norm"), 1e-5 * std::max(1.0, a->at("grad_norm")));
  EXPECT_LT(MaxWeightDifference(*plain, *changed), 1e-5);
  // The step did move the weights (the comparison is not between two untouched models).
  auto fresh = LoadSeeded(c.model, value_head);
  EXPECT_GT(MaxWeightDifference(*plain, *fresh), 1e-2);
}

TEST(MicroBatchesTest, SplitKeepsOrderStaysWithinTheBudgetAndSharesSumToOne) {
  RowShapes shapes;
  shapes.lengths = {10, 4, 6, 30, 5, 5};
  shapes.response_tokens = {4, 1, 2, 20, 3, 0};
  const std::vector<int64_t> minibatch = {0, 1, 2, 3, 4, 5};
  std::vector<MicroBatch> micro = SplitMicroBatches(minibatch, shapes, 20);
  std::vector<int64_t> seen;
  double rows = 0, tokens = 0;
  for (const MicroBatch& m : micro) {
    int64_t longest = 0;
    for (int64_t r : m.rows) longest = std::max(longest, shapes.lengths[r]);
    // Only a row longer than the budget may exceed it, alone.
    if (m.rows.size() > 1) {
      EXPECT_LE(static_cast<int64_t>(m.rows.size()) * longest, 20);
    }
    seen.insert(seen.end(), m.rows.begin(), m.rows.end());
    rows += m.row_share;
    tokens += m.token_share;
    EXPECT_EQ(m.minibatch_width, 29);
    EXPECT_EQ(m.minibatch_rows, minibatch);
  }
  EXPECT_EQ(seen, minibatch);
  EXPECT_NEAR(rows, 1.0, 1e-12);
  EXPECT_NEAR(tokens, 1.0, 1e-12);
  EXPECT_EQ(micro.size(), 4u);  // {10, 4}, {6}, {30}, {5, 5}: 2 x 10 = 20 fits
  EXPECT_EQ(SplitMicroBatches(minibatch, shapes, 0).size(), 1u);
  shapes.sequences_per_row = 2;  // pairs: twice the padded tokens
  EXPECT_EQ(SplitMicroBatches(minibatch, shapes, 20).size(), 5u);
}

TEST(StepEquivalenceTest, MicroBatchesByTokenBudgetTakeTheWholeMinibatchStep) {
  for (const Case& c : EveryLoss()) {
    ExpectSameStep(c, [](AlgorithmConfig& config) { config.max_tokens_per_microbatch = 9; });
  }
}

TEST(StepEquivalenceTest, GradientCheckpointingGivesTheSameStep) {
  for (const Case& c : {Case{"ppo", "gpt2"}, Case{"grpo", "llama"}, Case{"dpo", "llama"}}) {
    ExpectSameStep(c, [](AlgorithmConfig& config) { config.gradient_checkpointing = true; });
    ExpectSameStep(c, [](AlgorithmConfig& config) {
      config.gradient_checkpointing = true;
      config.max_tokens_per_microbatch = 12;
    });
  }
}

// One on-policy step (1 epoch, 1 minibatch) needs no Evaluate pass: without old log-probs
// the trainer takes its own, detached, and ends with the weights of the step given the
// evaluated ones (the coordinator's SkipsEvaluate relies on it). Any other step asks for them.
TEST(StepEquivalenceTest, OnPolicyStepWithoutOldLogprobsEqualsTheEvaluatedStep) {
  for (const Case& c :
       {Case{"grpo", "llama"}, Case{"grpo", "gpt2", algo::LossAggregation::kSequenceMean},
        Case{"rloo", "gpt2"}}) {
    SCOPED_TRACE(c.algorithm + " on " + c.model);
    auto evaluated = LoadSeeded(c.model, false);
    auto on_policy = LoadSeeded(c.model, false);
    ASSERT_NE(evaluated, nullptr);
    ASSERT_NE(on_policy, nullptr);
    auto one_step = [&](AlgorithmConfig& config) {
      config.num_minibatches = 1;
      config.max_tokens_per_microbatch = 12;  // accumulation keeps it one step
    };
    auto a = Step(*evaluated, c.algorithm, ConfigOf(c, one_step));
    ASSERT_TRUE(a.ok()) << a.status();
    auto b = Step(*on_policy, c.algorithm, ConfigOf(c, one_step), /*omit_old_logprobs=*/true);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(b->at("steps"), 1);
    EXPECT_NEAR(a->at("loss"), b->at("loss"), 1e-5);
    EXPECT_LT(MaxWeightDifference(*evaluated, *on_policy), 1e-5);
    EXPECT_EQ(b->at("clip_fraction"), 0);  // the ratio is exactly one
    auto fresh = LoadSeeded(c.model, false);
    EXPECT_GT(MaxWeightDifference(*on_policy, *fresh), 1e-2);

    for (auto more : {std::function<void(AlgorithmConfig&)>(
                          [](AlgorithmConfig& config) { config.num_minibatches = 2; }),
                      std::function<void(AlgorithmConfig&)>([](AlgorithmConfig& config) {
                        config.num_minibatches = 1;
                        config.ppo_epochs = 2;
                      })}) {
      auto refused = Step(*fresh, c.algorithm, ConfigOf(c, more), /*omit_old_logprobs=*/true);
      ASSERT_FALSE(refused.ok());
      EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_NE(refused.status().message().find("old_logprobs is missing"), std::string::npos)
          << refused.status();
    }
  }
}

// Truncated importance sampling weighs each token's policy loss by min(exp(old - rollout),
// cap): a rollout that computes the trainer's log-probs leaves the step unchanged; one whose
// log-probs sit 0.3 lower scales the policy loss by e^0.3 (or the cap); none is an error.
TEST(StepEquivalenceTest, TruncatedImportanceSamplingWeighsThePolicyLoss) {
  for (const Case& c : {Case{"grpo", "llama"}, Case{"ppo", "gpt2"}}) {
    ExpectSameStep(c, [](AlgorithmConfig& config) { config.tis_cap = 2.0; });
    auto no_kl = [](double cap) {
      return [cap](AlgorithmConfig& config) {
        config.kl_coef = 0;  // the KL term is not weighted: leave it out to compare losses
        config.entropy_coef = 0;
        config.vf_coef = 0;
        config.tis_cap = cap;
        config.num_minibatches = 1;  // one step: its loss is taken at the starting weights
        config.ppo_epochs = 1;
      };
    };
    auto plain = LoadSeeded(c.model, c.algorithm == "ppo");
    auto base = Step(*plain, c.algorithm, ConfigOf(c, no_kl(0)));
    ASSERT_TRUE(base.ok()) << base.status();
    for (const double cap : {2.0, 1.2}) {
      SCOPED_TRACE(c.algorithm + " cap " + std::to_string(cap));
      const double weight = std::min(std::exp(0.3), cap);
      auto trainer = LoadSeeded(c.model, c.algorithm == "ppo");
      auto weighted = Step(*trainer, c.algorithm, ConfigOf(c, no_kl(cap)), false, 0.3f);
      ASSERT_TRUE(weighted.ok()) << weighted.status();
      EXPECT_NEAR(weighted->at("tis_weight"), weight, 1e-5);
      EXPECT_GT(std::abs(base->at("policy_loss")), 1e-4);
      // (A uniform weight scales the gradient too, which clipping and Adam normalise away:
      // the loss is where it shows.)
      EXPECT_NEAR(weighted->at("policy_loss") / base->at("policy_loss"), weight, 1e-4);
    }
    auto missing = Step(*plain, c.algorithm, ConfigOf(c, no_kl(2.0)), false, NAN);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find("rollout_logprobs"), std::string::npos)
        << missing.status();
  }
}

// Nodes of the autograd graph that produced `t`.
int64_t GraphNodes(const torch::Tensor& t) {
  std::vector<torch::autograd::Node*> stack = {t.grad_fn().get()};
  std::set<torch::autograd::Node*> seen;
  while (!stack.empty()) {
    torch::autograd::Node* node = stack.back();
    stack.pop_back();
    if (node == nullptr || !seen.insert(node).second) continue;
    for (const auto& edge : node->next_edges()) stack.push_back(edge.function.get());
  }
  return static_cast<int64_t>(seen.size());
}

// Checkpointing is really on: a layer leaves one node in the graph, not its operations.
TEST(StepEquivalenceTest, GradientCheckpointingKeepsOneGraphNodePerLayer) {
  for (const std::string name : {"gpt2", "llama"}) {
    auto trainer = LoadSeeded(name, /*value_head=*/false);
    ASSERT_NE(trainer, nullptr);
    model::CausalLm& model = trainer->model();
    const torch::Tensor ids = torch::randint(1, 100, {2, 9});
    const int64_t plain = GraphNodes(model.ForwardHidden(ids, {}, {}, nullptr));
    model.decoder().set_gradient_checkpointing(true);
    const int64_t checkpointed = GraphNodes(model.ForwardHidden(ids, {}, {}, nullptr));
    const int64_t layers = model.config().num_layers;
    EXPECT_LT(checkpointed, plain - layers * 10) << name << ": " << plain << " nodes without";
    torch::NoGradGuard no_grad;  // inference records nothing either way
    EXPECT_FALSE(model.ForwardHidden(ids, {}, {}, nullptr).requires_grad());
  }
}

TEST(StepEquivalenceTest, Bf16MixedKeepsFloat32StateAndTracksTheFloat32Step) {
  for (const std::string model : {"gpt2", "llama"}) {
    SCOPED_TRACE(model);
    auto fp32 = LoadSeeded(model, /*value_head=*/true);
    auto mixed = LoadSeeded(model, /*value_head=*/true);
    ASSERT_NE(fp32, nullptr);
    ASSERT_NE(mixed, nullptr);
    const SequenceBatch batch = VariedBatch(6, 31);
    auto lp32 = fp32->Evaluate(batch, 1.0, true);
    auto lp16 = mixed->Evaluate(batch, 1.0, true, Precision::kBf16Mixed);
    ASSERT_TRUE(lp32.ok() && lp16.ok());
    EXPECT_EQ(lp16->logprobs.scalar_type(), torch::kFloat32);
    EXPECT_EQ(lp16->values.scalar_type(), torch::kFloat32);
    // bf16 has 8 mantissa bits: the forward differs, but only at that precision.
    const double eval_diff = (lp32->logprobs - lp16->logprobs).abs().max().item<double>();
    EXPECT_GT(eval_diff, 0) << "bf16 autocast did not change the forward";
    EXPECT_LT(eval_diff, 0.15);

    Case ppo{"ppo", model};
    auto a = Step(*fp32, "ppo", ConfigOf(ppo, [](AlgorithmConfig&) {}));
    auto b = Step(*mixed, "ppo",
                  ConfigOf(ppo, [](AlgorithmConfig& c) { c.precision = Precision::kBf16Mixed; }));
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_NEAR(a->at("loss"), b->at("loss"), 0.05 * std::max(1.0, std::abs(a->at("loss"))));
    for (const auto& [name, weight] : mixed->NamedWeights(true)) {
      ASSERT_EQ(weight.scalar_type(), torch::kFloat32) << name;
      ASSERT_TRUE(torch::isfinite(weight).all().item<bool>()) << name;
    }
    // Both stepped in nearly the same direction.
    auto fresh = LoadSeeded(model, /*value_head=*/true);
    EXPECT_GT(StepCosine(*fresh, *fp32, *mixed), 0.9);
  }
}

}  // namespace
}  // namespace rlhf::train
