// Compares every common/algo function against the goldens written by
// tests/golden/make_algo_goldens.py and make_off_policy_goldens.py (TRL 0.24.0 / torch 2.9.1 /
// transformers 4.57.1), in
// float64 (tolerance 1e-6) and float32 (1e-5), relative to max(1, |expected|).

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include <gtest/gtest.h>

#include "common/algo/dpo.h"
#include "common/algo/grpo.h"
#include "common/algo/importance_weights.h"
#include "common/algo/kl.h"
#include "common/algo/kto.h"
#include "common/algo/logprobs.h"
#include "common/algo/masked.h"
#include "common/algo/orpo.h"
#include "common/algo/overlong_penalty.h"
#include "common/algo/ppo.h"
#include "common/algo/reward_model.h"
#include "common/algo/sft.h"
#include "common/algo/simpo.h"
#include "tests/unit/algo/test_util.h"

namespace rlhf::algo {
namespace {

using testing::TensorFromJson;
using testing::Unwrap;
using Tensors = std::map<std::string, torch::Tensor>;

struct Case {
  std::string fn;
  nlohmann::json params;
  Tensors in;
  torch::ScalarType dtype;

  const torch::Tensor& operator[](const std::string& name) const { return in.at(name); }
  torch::Tensor opt(const std::string& name) const {
    auto it = in.find(name);
    return it == in.end() ? torch::Tensor() : it->second;
  }
  template <typename T>
  T p(const std::string& name, T fallback) const {
    return params.contains(name) ? params.at(name).get<T>() : fallback;
  }
};

struct Totals {
  int comparisons = 0;
  double max_error[2] = {0, 0};  // float64, float32
  std::string worst[2];
};
Totals& totals() {
  static Totals t;
  return t;
}

LossAggregation Aggregation(const std::string& name) {
  if (name == "sequence_mean") return LossAggregation::kSequenceMean;
  if (name == "sequence_sum") return LossAggregation::kSequenceSum;
  if (name == "constant") return LossAggregation::kConstantNormalizer;
  return LossAggregation::kTokenMean;
}

KlEstimator Estimator(const std::string& name) {
  if (name == "k2") return KlEstimator::kK2;
  if (name == "k3") return KlEstimator::kK3;
  return KlEstimator::kK1;
}

const std::map<std::string, std::function<Tensors(const Case&)>>& Runners() {
  static const auto* runners = new std::map<std::string, std::function<Tensors(const Case&)>>{
      {"masked_mean",
       [](const Case& c) {
         return Tensors{{"out", MaskedMean(c["values"], c["mask"])}};
       }},
      {"masked_row_mean",
       [](const Case& c) {
         return Tensors{{"out", MaskedRowMean(c["values"], c["mask"])}};
       }},
      {"masked_row_sum",
       [](const Case& c) {
         return Tensors{{"out", MaskedRowSum(c["values"], c["mask"])}};
       }},
      {"masked_var",
       [](const Case& c) {
         return Tensors{{"out", MaskedVar(c["values"], c["mask"], c.p("unbiased", true))}};
       }},
      {"masked_whiten",
       [](const Case& c) {
         return Tensors{{"out", MaskedWhiten(c["values"], c["mask"], c.p("shift_mean", true))}};
       }},
      {"aggregate",
       [](const Case& c) {
         return Tensors{
             {"out", AggregateLoss(c["loss"], c["mask"], Aggregation(c.p<std::string>("mode", "")),
                                   c.p<int64_t>("max_length", 0))}};
       }},
      {"kl_penalty",
       [](const Case& c) {
         return Tensors{
             {"out", KlPenalty(c["logprobs"], c["ref_logprobs"],
                               Estimator(c.p<std::string>("estimator", "k1")), c["mask"])}};
       }},
      {"adaptive_kl",
       [](const Case& c) {
         auto ctl = Unwrap(AdaptiveKlController::Create(c.p("init_kl_coef", 0.0),
                                                        c.p("target", 0.0), c.p("horizon", 0.0)));
         const torch::Tensor kl = c["kl"].to(torch::kDouble);
         std::vector<double> values;
         for (int64_t i = 0; i < kl.numel(); ++i) {
           ctl.Update(kl[i].item<double>(), c["n_steps"][i].item<int64_t>());
           values.push_back(ctl.value());
         }
         return Tensors{{"values", torch::tensor(values, torch::kDouble)}};
       }},
      {"ppo_rewards_gae",
       [](const Case& c) {
         PpoRewardOptions o;
         o.kl_coef = c.p("kl_coef", 0.05);
         o.kl_estimator = Estimator(c.p<std::string>("estimator", "k1"));
         if (c.params.contains("missing_eos_penalty"))
           o.missing_eos_penalty = c.p("missing_eos_penalty", 0.0);
         auto r = Unwrap(ComputePpoRewards(c["logprobs"], c["ref_logprobs"], c["scores"],
                                           c["value_mask"], c["has_eos"], o));
         auto g = Unwrap(ComputeGae(r.rewards, c["values"], c["value_mask"], c.p("gamma", 1.0),
                                    c.p("lambda", 1.0)));
         auto w = Unwrap(WhitenAdvantages(g.advantages, c["policy_mask"]));
         return Tensors{{"rewards", r.rewards},
                        {"scores", r.scores},
                        {"advantages", g.advantages},
                        {"returns", g.returns},
                        {"whitened", w}};
       }},
      {"gae",
       [](const Case& c) {
         auto g = Unwrap(ComputeGae(c["rewards"], c["values"], c["mask"], c.p("gamma", 1.0),
                                    c.p("lambda", 1.0)));
         return Tensors{{"advantages", g.advantages}, {"returns", g.returns}};
       }},
      {"ppo_policy_loss",
       [](const Case& c) {
         PolicyLossOptions o;
         o.clip_eps_low = c.p("clip_eps_low", 0.2);
         o.clip_eps_high = c.p("clip_eps_high", 0.2);
         if (c.params.contains("dual_clip")) o.dual_clip = c.p("dual_clip", 3.0);
         o.aggregation = Aggregation(c.p<std::string>("aggregation", ""));
         auto r = Unwrap(PpoPolicyLoss(c["logprobs"], c["old_logprobs"], c["advantages"], c["mask"],
                                       o, c.opt("is_weights")));
         return Tensors{{"loss", r.loss},
                        {"per_token_loss", r.per_token_loss},
                        {"clip_fraction", r.clip_fraction},
                        {"approx_kl", r.approx_kl}};
       }},
      {"ppo_value_loss",
       [](const Case& c) {
         ValueLossOptions o;
         o.clip_range = c.params.contains("clip_range")
                            ? std::optional<double>(c.p("clip_range", 0.2))
                            : std::nullopt;
         auto r = Unwrap(PpoValueLoss(c["values"], c["old_values"], c["returns"], c["mask"], o));
         return Tensors{{"loss", r.loss}, {"clip_fraction", r.clip_fraction}};
       }},
      {"ppo_loss",
       [](const Case& c) {
         PpoLossInputs in{c["logprobs"], c["old_logprobs"], c["advantages"],
                          c["mask"],     c["values"],       c["old_values"],
                          c["returns"],  c["value_mask"],   c["entropy"]};
         PpoLossOptions o;
         o.vf_coef = c.p("vf_coef", 0.1);
         o.entropy_coef = c.p("entropy_coef", 0.0);
         auto r = Unwrap(PpoLoss(in, o));
         return Tensors{{"loss", r.loss},
                        {"policy_loss", r.policy_loss},
                        {"value_loss", r.value_loss},
                        {"entropy", r.entropy}};
       }},
      {"logprobs_entropy",
       [](const Case& c) {
         torch::Tensor logits = c["logits"].clone().requires_grad_(true);
         LogprobOptions o;
         o.chunk = c.p<int64_t>("chunk", 0);
         o.temperature = c.p("temperature", 1.0);
         auto r = Unwrap(LogprobsAndEntropyFromLogits(logits, c["targets"], o));
         ((r.logprobs * c["w_logprobs"]).sum() + (r.entropy * c["w_entropy"]).sum()).backward();
         return Tensors{
             {"logprobs", r.logprobs}, {"entropy", r.entropy}, {"grad_logits", logits.grad()}};
       }},
      {"sft",
       [](const Case& c) {
         SftLossOptions o;
         if (c.params.contains("num_items_in_batch"))
           o.num_items_in_batch = c.p("num_items_in_batch", 1.0);
         auto r = Unwrap(SftLossFromLogits(c["logits"], c["targets"], c["mask"], o));
         return Tensors{
             {"loss", r.loss}, {"num_tokens", r.num_tokens}, {"token_accuracy", r.token_accuracy}};
       }},
      {"grpo_advantages",
       [](const Case& c) {
         const std::string s = c.p<std::string>("scale_rewards", "group");
         const RewardScaling scaling = s == "batch"  ? RewardScaling::kBatch
                                       : s == "none" ? RewardScaling::kNone
                                                     : RewardScaling::kGroup;
         auto r = Unwrap(GrpoAdvantages(c["rewards"], c.p<int64_t>("group_size", 2), scaling));
         return Tensors{{"advantages", r.advantages},
                        {"std", r.std},
                        {"zero_std_fraction", r.zero_std_fraction}};
       }},
      {"grpo_loss",
       [](const Case& c) {
         GrpoLossOptions o;
         const std::string t = c.p<std::string>("loss_type", "dapo");
         o.loss_type = t == "grpo"      ? GrpoLossType::kGrpo
                       : t == "bnpo"    ? GrpoLossType::kBnpo
                       : t == "dr_grpo" ? GrpoLossType::kDrGrpo
                                        : GrpoLossType::kDapo;
         o.beta = c.p("beta", 0.0);
         o.epsilon_low = c.p("epsilon_low", 0.2);
         o.epsilon_high = c.p("epsilon_high", 0.2);
         if (c.params.contains("delta")) o.delta = c.p("delta", 0.0);
         if (c.p<std::string>("importance_sampling", "token") == "sequence") {
           o.importance_sampling = ImportanceSampling::kSequence;
         }
         if (c.p<std::string>("policy_loss", "clip") == "cispo") {
           o.policy_loss = PolicyLossKind::kCispo;
         }
         o.max_completion_length = c.p<int64_t>("max_completion_length", 0);
         if (c.params.contains("num_items_in_batch"))
           o.num_items_in_batch = c.p("num_items_in_batch", 1.0);
         const bool grad = c.p("grad", false);
         const torch::Tensor lp = c["logprobs"].clone().requires_grad_(grad);
         GrpoLossInputs in{lp,        c["old_logprobs"],  c.opt("ref_logprobs"), c["advantages"],
                           c["mask"], c.opt("is_weights")};
         auto r = Unwrap(GrpoLoss(in, o));
         if (grad) r.loss.backward();
         return Tensors{{"loss", r.loss},
                        {"clip_ratio_low", r.clip_ratio_low},
                        {"clip_ratio_high", r.clip_ratio_high},
                        {"clip_ratio_region", r.clip_ratio_region},
                        {"mean_kl", r.mean_kl},
                        {"grad_logprobs", lp.grad()}};
       }},
      {"tis_weights",
       [](const Case& c) {
         return Tensors{
             {"weights", Unwrap(TruncatedIsWeights(c["old_logprobs"], c["rollout_logprobs"],
                                                   c["mask"], c.p("cap", 1.0)))}};
       }},
      {"overlong_penalty",
       [](const Case& c) {
         return Tensors{{"penalty", Unwrap(OverlongPenalty(
                                        c["lengths"], c.p<int64_t>("max_tokens", 0),
                                        c.p<int64_t>("buffer_tokens", 0), c.p("penalty", 1.0)))}};
       }},
      {"rloo_advantages",
       [](const Case& c) {
         RlooAdvantageOptions o;
         o.beta = c.p("beta", 0.05);
         o.normalize_advantages = c.p("normalize_advantages", false);
         if (c.params.contains("reward_clip")) {
           auto range = c.params.at("reward_clip").get<std::vector<double>>();
           o.reward_clip = std::make_pair(range[0], range[1]);
         }
         return Tensors{
             {"advantages", Unwrap(RlooAdvantages(c["rewards"], c.p<int64_t>("group_size", 2),
                                                  c["sequence_kl"], o))}};
       }},
      {"rloo_loss",
       [](const Case& c) {
         auto r = Unwrap(RlooLoss(c["logprobs"], c["old_logprobs"], c["advantages"], c["mask"],
                                  c.p("epsilon_low", 0.2), c.p("epsilon_high", 0.2)));
         return Tensors{{"loss", r.loss}};
       }},
      {"reinforce_pp",
       [](const Case& c) {
         auto r = Unwrap(ReinforcePlusPlusAdvantages(c["rewards"], c["mask"], c.p("gamma", 1.0)));
         return Tensors{{"returns", r.returns}, {"advantages", r.advantages}};
       }},
      {"dpo",
       [](const Case& c) {
         DpoOptions o;
         const std::string t = c.p<std::string>("loss_type", "sigmoid");
         o.loss_type = t == "robust"  ? DpoLossType::kRobust
                       : t == "hinge" ? DpoLossType::kHinge
                       : t == "ipo"   ? DpoLossType::kIpo
                                      : DpoLossType::kSigmoid;
         o.beta = c.p("beta", 0.1);
         o.label_smoothing = c.p("label_smoothing", 0.0);
         o.reference_free = c.p("reference_free", false);
         DpoInputs in{c["policy_chosen_logps"], c["policy_rejected_logps"],
                      c["ref_chosen_logps"],    c["ref_rejected_logps"],
                      c.opt("chosen_lengths"),  c.opt("rejected_lengths")};
         auto r = Unwrap(DpoLoss(in, o));
         return Tensors{{"losses", r.losses},
                        {"loss", r.loss},
                        {"chosen_rewards", r.chosen_rewards},
                        {"rejected_rewards", r.rejected_rewards},
                        {"reward_accuracy", r.reward_accuracy},
                        {"reward_margin", r.reward_margin}};
       }},
      {"kto",
       [](const Case& c) {
         KtoOptions o;
         o.beta = c.p("beta", 0.1);
         o.desirable_weight = c.p("desirable_weight", 1.0);
         o.undesirable_weight = c.p("undesirable_weight", 1.0);
         KtoInputs in{c["policy_logps"], c["ref_logps"], c["desirable"], c["policy_kl_logps"],
                      c["ref_kl_logps"]};
         auto r = Unwrap(KtoLoss(in, o));
         return Tensors{
             {"losses", r.losses}, {"loss", r.loss}, {"rewards", r.rewards}, {"kl", r.kl}};
       }},
      {"orpo",
       [](const Case& c) {
         OrpoOptions o;
         o.beta = c.p("beta", 0.1);
         auto r = Unwrap(OrpoLoss({c["chosen_logps"], c["rejected_logps"], c["chosen_nll"]}, o));
         return Tensors{{"loss", r.loss},
                        {"log_odds_ratio", r.log_odds_ratio},
                        {"log_odds_chosen", r.log_odds_chosen},
                        {"chosen_rewards", r.chosen_rewards},
                        {"rejected_rewards", r.rejected_rewards}};
       }},
      {"cpo",
       [](const Case& c) {
         CpoOptions o;
         const std::string t = c.p<std::string>("loss_type", "simpo");
         o.loss_type = t == "sigmoid" ? CpoLossType::kSigmoid
                       : t == "hinge" ? CpoLossType::kHinge
                       : t == "ipo"   ? CpoLossType::kIpo
                                      : CpoLossType::kSimpo;
         o.beta = c.p("beta", 2.0);
         o.simpo_gamma = c.p("simpo_gamma", 0.5);
         o.label_smoothing = c.p("label_smoothing", 0.0);
         o.nll_weight = c.p("nll_weight", 0.0);
         auto r = Unwrap(CpoLoss({c["chosen_logps"], c["rejected_logps"], c["chosen_nll"]}, o));
         return Tensors{{"losses", r.losses},
                        {"loss", r.loss},
                        {"chosen_rewards", r.chosen_rewards},
                        {"rejected_rewards", r.rejected_rewards}};
       }},
      {"reward_model",
       [](const Case& c) {
         RewardModelLossOptions o;
         if (c.params.contains("center_rewards_coefficient")) {
           o.center_rewards_coefficient = c.p("center_rewards_coefficient", 0.0);
         }
         auto r = Unwrap(RewardModelLoss(c["chosen"], c["rejected"], c.opt("margin"), o));
         return Tensors{{"loss", r.loss}, {"accuracy", r.accuracy}, {"margin", r.margin}};
       }},
  };
  return *runners;
}

void RunFamily(const std::string& family) {
  const nlohmann::json golden = testing::LoadGolden(family);
  ASSERT_TRUE(golden.contains("cases"));
  // An empty family checks nothing: that is a broken golden file, not a pass.
  ASSERT_GT(golden.at("cases").size(), 0u) << family << " has no golden cases";
  for (const torch::ScalarType dtype : {torch::kDouble, torch::kFloat}) {
    const bool f64 = dtype == torch::kDouble;
    const double tolerance = f64 ? 1e-6 : 1e-5;
    int index = 0;
    for (const auto& j : golden.at("cases")) {
      Case c{j.at("fn").get<std::string>(), j.at("params"), {}, dtype};
      for (const auto& [name, t] : j.at("inputs").items()) c.in[name] = TensorFromJson(t, dtype);
      SCOPED_TRACE(family + " case " + std::to_string(index++) + " " + c.fn + " " +
                   c.params.dump() + (f64 ? " float64" : " float32"));
      auto runner = Runners().find(c.fn);
      ASSERT_NE(runner, Runners().end()) << "no runner for " << c.fn;
      const Tensors actual = runner->second(c);
      for (const auto& [name, t] : j.at("outputs").items()) {
        const torch::Tensor expected = TensorFromJson(t, torch::kDouble);
        auto it = actual.find(name);
        ASSERT_NE(it, actual.end()) << "runner gives no " << name;
        ASSERT_TRUE(it->second.defined()) << name;
        ASSERT_EQ(it->second.numel(), expected.numel()) << name;
        if (f64) {
          EXPECT_EQ(it->second.scalar_type(), torch::kDouble) << name;
        }
        const double err = testing::MaxScaledError(it->second, expected);
        EXPECT_LT(err, tolerance) << name << "\nactual " << it->second << "\nexpected " << expected;
        if (err > totals().max_error[f64 ? 0 : 1]) {
          totals().max_error[f64 ? 0 : 1] = err;
          totals().worst[f64 ? 0 : 1] = family + "/" + c.fn + "/" + name;
        }
        ++totals().comparisons;
      }
    }
  }
}

class SummaryEnvironment : public ::testing::Environment {
 public:
  void TearDown() override {
    std::printf(
        "[algo goldens] %d output comparisons; max scaled error float64 %.3g (%s), float32 %.3g "
        "(%s)\n",
        totals().comparisons, totals().max_error[0], totals().worst[0].c_str(),
        totals().max_error[1], totals().worst[1].c_str());
  }
};
const auto* const kSummary = ::testing::AddGlobalTestEnvironment(new SummaryEnvironment);

TEST(AlgoGoldenTest, Masked) { RunFamily("masked"); }
TEST(AlgoGoldenTest, Kl) { RunFamily("kl"); }
TEST(AlgoGoldenTest, Ppo) { RunFamily("ppo"); }
TEST(AlgoGoldenTest, LogprobsAndSft) { RunFamily("logprobs"); }
TEST(AlgoGoldenTest, GrpoRlooReinforce) { RunFamily("grpo"); }
TEST(AlgoGoldenTest, Dpo) { RunFamily("dpo"); }
TEST(AlgoGoldenTest, Kto) { RunFamily("kto"); }
TEST(AlgoGoldenTest, Orpo) { RunFamily("orpo"); }
TEST(AlgoGoldenTest, Simpo) { RunFamily("simpo"); }
TEST(AlgoGoldenTest, RewardModel) { RunFamily("reward_model"); }
TEST(AlgoGoldenTest, OffPolicyAndDapo) { RunFamily("off_policy"); }

}  // namespace
}  // namespace rlhf::algo
