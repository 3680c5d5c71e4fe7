// A job's optimizer and loss settings reach the trainer field for field: JobSpec ->
// jobs::TrainConfigForJob (the coordinator) -> the wire -> AlgorithmConfigFromProto (the
// actor). Every value is set away from its default, so a dropped field fails the test.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/jobs/job_spec.h"
#include "common/jobs/train_config.h"
#include "common/serving/actor/train_config_proto.h"

namespace rlhf::actor {
namespace {

using ::testing::HasSubstr;

v1::JobSpec SpecOrDie(const std::string& json) {
  auto spec = jobs::ParseJobSpecJson(json, "test");
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return v1::JobSpec();
  jobs::ApplyJobSpecDefaults(&*spec);
  return *spec;
}

// Through the wire format, as a remote actor receives it.
train::AlgorithmConfig OverTheWire(const v1::TrainConfig& config) {
  v1::TrainConfig received;
  EXPECT_TRUE(received.ParseFromString(config.SerializeAsString()));
  auto translated = AlgorithmConfigFromProto(received);
  EXPECT_TRUE(translated.ok()) << translated.status();
  return translated.ok() ? *translated : train::AlgorithmConfig();
}

constexpr char kOptimizer[] = R"("optimizer": {"learning_rate": 3e-4, "weight_decay": 0.01,
    "adam_beta1": 0.8, "adam_beta2": 0.95, "adam_epsilon": 1e-6, "grad_clip": 0.5,
    "warmup_steps": 4})";

TEST(TrainConfigTest, EveryOnlineFieldReachesTheTrainer) {
  v1::JobSpec spec = SpecOrDie(absl::StrCat(R"({"algorithm": "grpo",
      "models": {"policy_dir": "m"}, "data": {"train_path": "d"},
      "training": {"batch_size": 8, "minibatch_size": 2, "ppo_epochs": 3},
      "ppo": {"clip_range": 0.3, "vf_coef": 0.7, "clip_range_value": 0.4, "entropy_coef": 0.01,
              "clip_range_high": 0.35, "importance_sampling_level": "sequence",
              "loss_aggregation": "sequence_mean", "policy_loss": "cispo", "tis_cap": 2.5},
      "kl": {"coef": 0.02}, "generation": {"temperature": 0.9}, )",
                                            kOptimizer, "}"));
  const train::AlgorithmConfig c =
      OverTheWire(jobs::TrainConfigForJob(spec, /*rows=*/32, /*policy_version=*/1));
  EXPECT_EQ(c.algorithm, train::Algorithm::kGrpo);
  EXPECT_EQ(c.ppo_epochs, 3);
  EXPECT_EQ(c.num_minibatches, 4);
  EXPECT_DOUBLE_EQ(c.temperature, 0.9);
  ASSERT_TRUE(c.optimizer.has_value());
  EXPECT_DOUBLE_EQ(c.optimizer->learning_rate, 3e-4 * 2 / 4);  // warmup step 2 of 4
  EXPECT_DOUBLE_EQ(c.optimizer->weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(c.optimizer->beta1, 0.8);
  EXPECT_DOUBLE_EQ(c.optimizer->beta2, 0.95);
  EXPECT_DOUBLE_EQ(c.optimizer->eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.optimizer->max_grad_norm, 0.5);
  EXPECT_DOUBLE_EQ(c.clip_eps_low, 0.3);
  EXPECT_DOUBLE_EQ(c.clip_eps_high, 0.35);
  EXPECT_EQ(c.importance_sampling, algo::ImportanceSampling::kSequence);
  EXPECT_EQ(c.aggregation, algo::LossAggregation::kSequenceMean);
  EXPECT_EQ(c.policy_loss, algo::PolicyLossKind::kCispo);
  EXPECT_DOUBLE_EQ(c.tis_cap, 2.5);
  EXPECT_DOUBLE_EQ(c.vf_coef, 0.7);
  ASSERT_TRUE(c.value_clip.has_value());
  EXPECT_DOUBLE_EQ(*c.value_clip, 0.4);
  EXPECT_DOUBLE_EQ(c.entropy_coef, 0.01);
  EXPECT_DOUBLE_EQ(c.kl_coef, 0.02);  // grpo's in-loss KL

  spec.mutable_ppo()->set_loss_aggregation("constant_normalizer");
  EXPECT_EQ(OverTheWire(jobs::TrainConfigForJob(spec, 32, 1)).aggregation,
            algo::LossAggregation::kConstantNormalizer);

  spec.set_algorithm("ppo");  // PPO takes its KL in the rewards, not the loss
  spec.mutable_ppo()->set_importance_sampling_level("token");  // GSPO and CISPO: grpo only
  spec.mutable_ppo()->set_policy_loss("clip");
  EXPECT_DOUBLE_EQ(OverTheWire(jobs::TrainConfigForJob(spec, 32, 0)).kl_coef, 0.0);
}

TEST(TrainConfigTest, EveryPreferenceFieldReachesTheTrainer) {
  const std::string common = absl::StrCat(R"("models": {"policy_dir": "m"},
      "data": {"train_path": "d"}, "training": {"batch_size": 4},
      "preference": {"beta": 0.3, "loss_type": "robust", "label_smoothing": 0.2,
                     "kto_desirable_weight": 1.5, "kto_undesirable_weight": 0.5,
                     "orpo_lambda": 0.25, "simpo_gamma": 0.7}, )",
                                          kOptimizer, "}");
  train::AlgorithmConfig dpo = OverTheWire(
      jobs::TrainConfigForJob(SpecOrDie(absl::StrCat(R"({"algorithm": "dpo", )", common)), 4, 10));
  EXPECT_EQ(dpo.algorithm, train::Algorithm::kDpo);
  EXPECT_EQ(dpo.dpo_loss_type, algo::DpoLossType::kRobust);
  EXPECT_DOUBLE_EQ(dpo.beta, 0.3);
  EXPECT_DOUBLE_EQ(dpo.label_smoothing, 0.2);
  ASSERT_TRUE(dpo.optimizer.has_value());
  EXPECT_DOUBLE_EQ(dpo.optimizer->learning_rate, 3e-4);  // warmup over
  EXPECT_DOUBLE_EQ(dpo.optimizer->weight_decay, 0.01);

  train::AlgorithmConfig kto = OverTheWire(
      jobs::TrainConfigForJob(SpecOrDie(absl::StrCat(R"({"algorithm": "kto", )", common)), 4, 10));
  EXPECT_DOUBLE_EQ(kto.kto_desirable_weight, 1.5);
  EXPECT_DOUBLE_EQ(kto.kto_undesirable_weight, 0.5);
  train::AlgorithmConfig orpo = OverTheWire(
      jobs::TrainConfigForJob(SpecOrDie(absl::StrCat(R"({"algorithm": "orpo", )", common)), 4, 10));
  EXPECT_DOUBLE_EQ(orpo.beta, 0.25);
  train::AlgorithmConfig simpo = OverTheWire(jobs::TrainConfigForJob(
      SpecOrDie(absl::StrCat(R"({"algorithm": "simpo", )", common)), 4, 10));
  EXPECT_DOUBLE_EQ(simpo.simpo_gamma, 0.7);
}

TEST(TrainConfigTest, BadConfigsNameTheField) {
  v1::TrainConfig config;
  config.set_algorithm("ppo2");
  EXPECT_THAT(std::string(AlgorithmConfigFromProto(config).status().message()),
              HasSubstr("unknown algorithm \"ppo2\""));
  config.set_algorithm("dpo");
  config.set_beta(0.1);
  config.set_dpo_loss_type("nope");
  EXPECT_THAT(std::string(AlgorithmConfigFromProto(config).status().message()),
              HasSubstr("dpo_loss_type"));
  config.set_dpo_loss_type("ipo");
  config.mutable_optimizer()->set_adam_epsilon(0);
  EXPECT_THAT(std::string(AlgorithmConfigFromProto(config).status().message()),
              HasSubstr("optimizer.adam_epsilon"));
  config.clear_optimizer();
  auto ipo = AlgorithmConfigFromProto(config);
  ASSERT_TRUE(ipo.ok()) << ipo.status();
  EXPECT_EQ(ipo->dpo_loss_type, algo::DpoLossType::kIpo);
  EXPECT_FALSE(ipo->optimizer.has_value());  // the actor's own flags
}

// The reference is asked for log-probs only where something reads them.
TEST(TrainConfigTest, OnlyJobsWithAKlPenaltyOrReferenceLossUseTheReference) {
  auto uses = [](const std::string& algorithm, const std::string& kl) {
    return jobs::JobUsesReference(SpecOrDie(absl::StrCat(R"({"algorithm": ")", algorithm,
                                                         R"(", "models": {"policy_dir": "m"},
        "data": {"train_path": "d"}, "kl": )",
                                                         kl, "}")));
  };
  EXPECT_TRUE(uses("grpo", R"({"coef": 0.04})"));
  EXPECT_FALSE(uses("grpo", R"({"coef": 0})"));
  EXPECT_TRUE(uses("ppo", R"({"coef": 0, "adaptive": true})"));
  EXPECT_FALSE(uses("rloo", R"({"coef": 0})"));
  EXPECT_TRUE(uses("dpo", R"({"coef": 0})"));
  EXPECT_FALSE(uses("sft", R"({"coef": 0.1})"));
  EXPECT_FALSE(uses("simpo", R"({})"));
}

}  // namespace
}  // namespace rlhf::actor
