#include "common/jobs/job_spec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <limits>

#include <google/protobuf/util/message_differencer.h>

#include "tests/unit/jobs/test_util.h"

namespace rlhf::jobs {
namespace {

using ::testing::HasSubstr;

class JobSpecTest : public ::testing::Test {
 protected:
  // Spec paths are relative to the repository root (the tests' working directory).
  void SetUp() override { std::filesystem::current_path(RLHF_SOURCE_DIR); }

  static v1::JobSpec Load(const std::string& file) {
    auto spec = LoadJobSpecFile(file);
    EXPECT_TRUE(spec.ok()) << spec.status();
    return spec.ok() ? *spec : v1::JobSpec();
  }

  // Applies `edit` to the bundled PPO spec and returns the validation message.
  static std::string ErrorsAfter(const std::function<void(v1::JobSpec*)>& edit,
                                 const std::string& file = "examples/jobs/ppo.json") {
    v1::JobSpec spec = Load(file);
    edit(&spec);
    absl::Status status = ValidateJobSpec(spec);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    return std::string(status.message());
  }
};

TEST_F(JobSpecTest, BundledExamplesValidate) {
  v1::JobSpec ppo = Load("examples/jobs/ppo.json");
  EXPECT_EQ(ppo.algorithm(), "ppo");
  v1::JobSpec dpo = Load("examples/jobs/dpo.json");
  EXPECT_EQ(dpo.algorithm(), "dpo");
}

// Sizes and counts have upper bounds, checked without overflow (2^63 - 1 included).
TEST_F(JobSpecTest, EverySizeHasAnUpperBound) {
  constexpr int64_t kHuge = std::numeric_limits<int64_t>::max();
  const std::string errors = ErrorsAfter([](v1::JobSpec* spec) {
    spec->mutable_generation()->set_max_prompt_tokens(kHuge);
    spec->mutable_generation()->set_samples_per_prompt(kHuge);
    spec->mutable_training()->set_ppo_epochs(1000000000);
    spec->mutable_runtime()->set_num_actor_ranks(100000);
  });
  EXPECT_THAT(errors, HasSubstr("generation.max_prompt_tokens: must be <= 1048576"));
  EXPECT_THAT(errors, HasSubstr("generation.samples_per_prompt: must be <= 1024"));
  EXPECT_THAT(errors, HasSubstr("training.ppo_epochs: must be <= 1000"));
  EXPECT_THAT(errors, HasSubstr("runtime.num_actor_ranks: must be <= 4096"));
  // Each within its bound, too much together.
  EXPECT_THAT(ErrorsAfter([](v1::JobSpec* spec) {
                spec->mutable_training()->set_batch_size(65536);
                spec->mutable_training()->set_minibatch_size(65536);
                spec->mutable_generation()->set_samples_per_prompt(1024);
              }),
              HasSubstr("training.batch_size x generation.samples_per_prompt: must be <= 1048576"));
}

TEST_F(JobSpecTest, JsonRoundTrip) {
  v1::JobSpec spec = Load("examples/jobs/ppo.json");
  auto json = JobSpecToJson(spec);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"policy_dir\""));
  auto parsed = ParseJobSpecJson(*json, "round-trip");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(spec, *parsed));
}

TEST_F(JobSpecTest, DefaultsFillUnsetFieldsOnly) {
  auto spec = ParseJobSpecJson(R"({"algorithm": "grpo", "models": {"policy_dir": "m"},
                                   "optimizer": {"weight_decay": 0.0},
                                   "training": {"batch_size": 16}})",
                               "inline");
  ASSERT_TRUE(spec.ok()) << spec.status();
  ApplyJobSpecDefaults(&*spec);
  EXPECT_DOUBLE_EQ(spec->optimizer().learning_rate(), 1e-6);
  EXPECT_DOUBLE_EQ(spec->optimizer().weight_decay(), 0.0);
  EXPECT_EQ(spec->training().batch_size(), 16);
  EXPECT_EQ(spec->training().minibatch_size(), 16);
  EXPECT_EQ(spec->training().ppo_epochs(), 4);
  EXPECT_EQ(spec->generation().samples_per_prompt(), 4);
  EXPECT_DOUBLE_EQ(spec->ppo().gae_lambda(), 0.95);
  EXPECT_DOUBLE_EQ(spec->kl().coef(), 0.05);
  EXPECT_EQ(spec->kl().estimator(), "k1");
  EXPECT_EQ(spec->preference().loss_type(), "sigmoid");
  EXPECT_EQ(spec->reward().kind(), "model");
  EXPECT_EQ(spec->models().reference_dir(), "m");
  EXPECT_EQ(spec->runtime().num_actor_ranks(), 1);
  EXPECT_EQ(spec->checkpoint().interval(), 50);
  EXPECT_DOUBLE_EQ(spec->ppo().clip_range_high(), 0.2);  // = clip_range
  EXPECT_EQ(spec->ppo().importance_sampling_level(), "token");
  EXPECT_EQ(spec->ppo().loss_aggregation(), "token_mean");
  EXPECT_EQ(spec->ppo().policy_loss(), "clip");
  EXPECT_DOUBLE_EQ(spec->ppo().tis_cap(), 0.0);
  EXPECT_EQ(spec->reward().overlong_buffer_tokens(), 0);

  v1::JobSpec again = *spec;
  ApplyJobSpecDefaults(&again);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*spec, again));

  v1::JobSpec simpo;
  simpo.set_algorithm("simpo");
  ApplyJobSpecDefaults(&simpo);
  EXPECT_DOUBLE_EQ(simpo.preference().beta(), 2.0);
  v1::JobSpec ipo;
  ipo.set_algorithm("ipo");
  ApplyJobSpecDefaults(&ipo);
  EXPECT_EQ(ipo.preference().loss_type(), "ipo");
  // CISPO's clip_range_high caps the weight itself: its default is 5, not 1 + 0.2.
  v1::JobSpec cispo;
  cispo.set_algorithm("grpo");
  cispo.mutable_ppo()->set_policy_loss("cispo");
  ApplyJobSpecDefaults(&cispo);
  EXPECT_DOUBLE_EQ(cispo.ppo().clip_range_high(), 5.0);
}

TEST_F(JobSpecTest, MalformedJsonNamesTheFile) {
  testing::TempDir dir;
  auto spec = LoadJobSpecFile(dir.Write("broken.json", "{\"algorithm\": \"ppo\","));
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(spec.status().message(), HasSubstr("broken.json: malformed job spec JSON"));

  auto typo = ParseJobSpecJson(R"({"algoritm": "ppo"})", "typo.json");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(typo.status().message(), HasSubstr("typo.json"));
  EXPECT_THAT(typo.status().message(), HasSubstr("algoritm"));

  EXPECT_EQ(LoadJobSpecFile(dir.File("missing.json")).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JobSpecTest, EachBadFieldNamesItsPath) {
  struct Case {
    std::function<void(v1::JobSpec*)> edit;
    std::string expected;
  };
  const Case cases[] = {
      {[](v1::JobSpec* s) { s->mutable_optimizer()->set_learning_rate(-1); },
       "optimizer.learning_rate: must be > 0, got -1"},
      {[](v1::JobSpec* s) { s->set_algorithm("trpo"); }, "algorithm: unknown algorithm \"trpo\""},
      {[](v1::JobSpec* s) { s->clear_algorithm(); }, "algorithm: required"},
      {[](v1::JobSpec* s) { s->mutable_data()->set_train_path("examples/data/nope.jsonl"); },
       "data.train_path: dataset file examples/data/nope.jsonl does not exist"},
      {[](v1::JobSpec* s) { s->mutable_models()->set_policy_dir("examples/data"); },
       "models.policy_dir: model directory examples/data has no config.json"},
      {[](v1::JobSpec* s) { s->mutable_models()->set_policy_dir("no/such/dir"); },
       "models.policy_dir: model directory no/such/dir does not exist"},
      {[](v1::JobSpec* s) { s->mutable_runtime()->set_num_actor_ranks(3); },
       "training.batch_size: must be divisible by runtime.num_actor_ranks (3), got 4"},
      {[](v1::JobSpec* s) { s->mutable_training()->set_minibatch_size(3); },
       "training.minibatch_size: must divide training.batch_size (4), got 3"},
      {[](v1::JobSpec* s) {
         s->set_algorithm("grpo");
         s->mutable_generation()->set_samples_per_prompt(1);
       },
       "generation.samples_per_prompt: grpo needs >= 2 samples per prompt"},
      {[](v1::JobSpec* s) {
         s->set_algorithm("rloo");
         s->mutable_generation()->set_samples_per_prompt(1);
       },
       "generation.samples_per_prompt: rloo needs >= 2"},
      {[](v1::JobSpec* s) { s->mutable_reward()->set_kind("model"); },
       "models.reward_dir: ppo needs a reward"},
      {[](v1::JobSpec* s) { s->mutable_reward()->set_kind("vibes"); },
       "reward.kind: unknown value \"vibes\""},
      {[](v1::JobSpec* s) {
         s->mutable_reward()->set_kind("regex");
         s->mutable_reward()->set_pattern("(unclosed");
       },
       "reward.pattern: invalid regex"},
      {[](v1::JobSpec* s) { s->mutable_reward()->set_kind("regex"); }, "reward.pattern: required"},
      {[](v1::JobSpec* s) { s->mutable_ppo()->set_gamma(1.5); }, "ppo.gamma: must be in [0, 1]"},
      {[](v1::JobSpec* s) { s->mutable_generation()->set_top_p(0); },
       "generation.top_p: must be in (0, 1]"},
      {[](v1::JobSpec* s) { s->mutable_kl()->set_estimator("k4"); },
       "kl.estimator: unknown value \"k4\""},
      {[](v1::JobSpec* s) { s->mutable_preference()->set_label_smoothing(0.5); },
       "preference.label_smoothing: must be in [0, 0.5)"},
      {[](v1::JobSpec* s) { s->mutable_endpoints()->add_rollout("localhost"); },
       "endpoints.rollout[0]: \"localhost\" is not host:port"},
      {[](v1::JobSpec* s) { s->mutable_endpoints()->set_reference("ipv4:127.0.0.1:1,127.0.0.1"); },
       "endpoints.reference: \"ipv4:127.0.0.1:1,127.0.0.1\" is not host:port, dns:///"},
      {[](v1::JobSpec* s) { s->mutable_endpoints()->set_reward("dns:///reward"); },
       "endpoints.reward: \"dns:///reward\" is not"},
      {[](v1::JobSpec* s) { s->mutable_generation()->set_max_response_tokens(250); },
       "generation.max_response_tokens: max_prompt_tokens + max_response_tokens = 314 exceeds "
       "the policy's context length 256"},
      {[](v1::JobSpec* s) { s->mutable_training()->set_ppo_epochs(0); },
       "training.ppo_epochs: must be >= 1"},
      {[](v1::JobSpec* s) { s->set_algorithm("dpo"); },
       "data.train_path: not a prompt+chosen+rejected dataset for dpo"},
      {[](v1::JobSpec* s) {
         s->mutable_reward()->set_kind("exact_match");
         s->mutable_data()->set_train_path("examples/data/preference.jsonl");
       },
       "reward.kind exact_match needs a \"reference\""},
      {[](v1::JobSpec* s) { s->mutable_ppo()->set_importance_sampling_level("sequence"); },
       "ppo.importance_sampling_level: \"sequence\" (GSPO) applies to grpo only, not ppo"},
      {[](v1::JobSpec* s) { s->mutable_ppo()->set_importance_sampling_level("chunk"); },
       "ppo.importance_sampling_level: unknown value \"chunk\""},
      {[](v1::JobSpec* s) { s->mutable_ppo()->set_policy_loss("cispo"); },
       "ppo.policy_loss: \"cispo\" applies to grpo only, not ppo"},
      {[](v1::JobSpec* s) { s->mutable_ppo()->set_loss_aggregation("sum"); },
       "ppo.loss_aggregation: unknown value \"sum\""},
      {[](v1::JobSpec* s) {
         s->set_algorithm("rloo");
         s->mutable_ppo()->set_tis_cap(2);
       },
       "ppo.tis_cap: rloo's ratio is per sequence"},
      {[](v1::JobSpec* s) { s->mutable_ppo()->set_tis_cap(0.5); },
       "ppo.tis_cap: must be 0 (off) or >= 1, got 0.5"},
      {[](v1::JobSpec* s) { s->mutable_ppo()->set_clip_range_high(0); },
       "ppo.clip_range_high: must be > 0, got 0"},
      {[](v1::JobSpec* s) { s->mutable_reward()->set_overlong_buffer_tokens(16); },
       "reward.overlong_buffer_tokens: must be >= 0 and < generation.max_response_tokens (16), "
       "got 16"},
      {[](v1::JobSpec* s) { s->mutable_reward()->set_overlong_penalty(-1); },
       "reward.overlong_penalty: must be >= 0, got -1"},
      {[](v1::JobSpec* s) { s->mutable_generation()->set_dynamic_sampling(true); },
       "generation.dynamic_sampling: applies to grpo and rloo (group baselines), not ppo"},
      {[](v1::JobSpec* s) { s->mutable_runtime()->set_max_policy_lag(2); },
       "runtime.max_policy_lag: must be 0 or 1, got 2"},
      {[](v1::JobSpec* s) {
         s->set_algorithm("sft");
         s->mutable_runtime()->set_max_policy_lag(1);
       },
       "runtime.max_policy_lag: pipelines sampling with training; sft samples none"},
      {[](v1::JobSpec* s) { s->mutable_generation()->set_max_sampling_rounds(0); },
       "generation.max_sampling_rounds: must be in [1, 64], got 0"},
      {[](v1::JobSpec* s) { s->mutable_rejection_sampling()->set_min_score(1); },
       "rejection_sampling.min_score: applies to rejection_sampling only, not ppo"},
      {[](v1::JobSpec* s) {
         s->set_algorithm("rejection_sampling");
         s->mutable_generation()->set_samples_per_prompt(1);
       },
       "generation.samples_per_prompt: rejection_sampling needs >= 2"},
      {[](v1::JobSpec* s) {
         s->set_algorithm("rejection_sampling");
         s->mutable_ppo()->set_tis_cap(2);
       },
       "ppo.tis_cap: rejection_sampling takes SFT steps on its samples: no importance weights"},
      {[](v1::JobSpec* s) { s->mutable_checkpoint()->set_export_dtype("int8"); },
       "checkpoint.export_dtype: must be float32, bfloat16 or float16, got \"int8\""},
      {[](v1::JobSpec* s) { s->mutable_reward()->set_kind("none"); },
       "reward.kind: \"none\" is distill's; ppo needs a reward"},
      {[](v1::JobSpec* s) {
         s->set_algorithm("distill");
         s->mutable_reward()->set_kind("none");
       },
       "models.reference_dir: distill needs a teacher: set it to a model other than "
       "models.policy_dir"},
      {[](v1::JobSpec* s) { s->set_algorithm("distill"); },
       "reward.kind: distill takes no reward (its signal is the teacher's log-probs); leave it "
       "unset or \"none\", got \"length\""},
      {[](v1::JobSpec* s) {
         s->set_algorithm("distill");
         s->mutable_reward()->set_kind("none");
         s->mutable_kl()->set_coef(0);
       },
       "kl.coef: distill's loss is kl.coef times the reverse KL to the teacher: > 0"},
      {[](v1::JobSpec* s) {
         s->set_algorithm("distill");
         s->mutable_reward()->set_kind("none");
         s->mutable_kl()->set_adaptive(true);
       },
       "kl.adaptive: distill's KL coefficient is fixed"},
      {[](v1::JobSpec* s) {
         s->set_algorithm("distill");
         s->mutable_reward()->set_kind("none");
         s->mutable_models()->set_reference_dir("tests/golden/fixtures/tokenizers/qwen2_chat");
       },
       "models.reference_dir: the teacher's tokenizer.json differs from the policy's"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(ErrorsAfter(c.edit), HasSubstr(c.expected));
  }
}

TEST_F(JobSpecTest, EndpointsMayNameSeveralReplicas) {
  v1::JobSpec spec = Load("examples/jobs/ppo.json");
  spec.mutable_endpoints()->set_actor("actor:50052");
  spec.mutable_endpoints()->add_rollout("rollout-0.rollout:50053");
  spec.mutable_endpoints()->set_reference("ipv4:127.0.0.1:50054,127.0.0.1:50056");
  spec.mutable_endpoints()->set_reward("dns:///reward:50055");
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
}

TEST_F(JobSpecTest, DpoWithoutPreferenceDatasetNamesTheLine) {
  const std::string message = ErrorsAfter(
      [](v1::JobSpec* s) { s->mutable_data()->set_train_path("examples/data/prompts.jsonl"); },
      "examples/jobs/dpo.json");
  EXPECT_THAT(message, HasSubstr("data.train_path: not a prompt+chosen+rejected dataset"));
  EXPECT_THAT(message, HasSubstr("examples/data/prompts.jsonl:1: missing field \"chosen\""));
}

TEST_F(JobSpecTest, ReportsAllErrorsAtOnce) {
  const std::string message = ErrorsAfter([](v1::JobSpec* s) {
    s->mutable_optimizer()->set_learning_rate(-1);
    s->mutable_training()->set_minibatch_size(3);
    s->mutable_kl()->set_coef(-0.1);
  });
  EXPECT_THAT(message, HasSubstr("(3 errors)"));
  EXPECT_THAT(message, HasSubstr("optimizer.learning_rate"));
  EXPECT_THAT(message, HasSubstr("training.minibatch_size"));
  EXPECT_THAT(message, HasSubstr("kl.coef"));
}

TEST_F(JobSpecTest, LoadReportsFileAndFieldPaths) {
  testing::TempDir dir;
  auto spec = LoadJobSpecFile(dir.Write("bad.json", R"({"algorithm": "ppo",
      "models": {"policy_dir": "examples/models/tiny-gpt2"},
      "data": {"train_path": "examples/data/prompts.jsonl"},
      "reward": {"kind": "length"}, "optimizer": {"learning_rate": 0},
      "generation": {"max_prompt_tokens": 128, "max_response_tokens": 128}})"));
  ASSERT_FALSE(spec.ok());
  EXPECT_THAT(spec.status().message(), HasSubstr("bad.json: invalid job spec (1 error)"));
  EXPECT_THAT(spec.status().message(), HasSubstr("optimizer.learning_rate: must be > 0, got 0"));
}

TEST_F(JobSpecTest, EveryAlgorithmValidatesWithItsDatasetFormat) {
  testing::TempDir dir;
  const std::string prompt = dir.Write("p.jsonl", R"({"prompt": "q"})");
  const std::string sft = dir.Write("s.jsonl", R"({"prompt": "q", "completion": "a"})");
  const std::string pref =
      dir.Write("d.jsonl", R"({"prompt": "q", "chosen": "a", "rejected": "b"})");
  const std::string kto =
      dir.Write("k.jsonl", R"({"prompt": "q", "completion": "a", "label": true})");
  const std::pair<const char*, std::string> cases[] = {
      {"ppo", prompt}, {"grpo", prompt},       {"rloo", prompt}, {"reinforce_pp", prompt},
      {"sft", sft},    {"dpo", pref},          {"ipo", pref},    {"orpo", pref},
      {"simpo", pref}, {"reward_model", pref}, {"kto", kto},     {"rejection_sampling", prompt}};
  for (const auto& [algorithm, data] : cases) {
    v1::JobSpec spec;
    spec.set_algorithm(algorithm);
    spec.mutable_models()->set_policy_dir("examples/models/tiny-gpt2");
    spec.mutable_data()->set_train_path(data);
    spec.mutable_reward()->set_kind("length");
    spec.mutable_generation()->set_max_prompt_tokens(64);
    spec.mutable_generation()->set_max_response_tokens(64);
    ApplyJobSpecDefaults(&spec);
    EXPECT_TRUE(ValidateJobSpec(spec).ok()) << algorithm << ": " << ValidateJobSpec(spec);
    // The same data under the wrong format is caught (prompt-only data suits every
    // format's "prompt" only).
    if (data != prompt) {
      spec.mutable_data()->set_train_path(prompt);
      EXPECT_THAT(std::string(ValidateJobSpec(spec).message()), HasSubstr("data.train_path: not a"))
          << algorithm;
    }
  }
}

TEST_F(JobSpecTest, DistillTakesATeacherWithTheSameTokenizerAndNoReward) {
  testing::TempDir dir;
  const std::filesystem::path teacher = dir.File("teacher");
  std::filesystem::copy("examples/models/tiny-gpt2", teacher);
  v1::JobSpec spec;
  spec.set_algorithm("distill");
  spec.mutable_models()->set_policy_dir("examples/models/tiny-gpt2");
  spec.mutable_models()->set_reference_dir(teacher.string());
  spec.mutable_data()->set_train_path(dir.Write("p.jsonl", R"({"prompt": "q"})"));
  spec.mutable_generation()->set_max_prompt_tokens(64);
  spec.mutable_generation()->set_max_response_tokens(64);
  ApplyJobSpecDefaults(&spec);
  EXPECT_TRUE(ValidateJobSpec(spec).ok()) << ValidateJobSpec(spec);
  EXPECT_EQ(spec.reward().kind(), "none");
  EXPECT_EQ(spec.kl().coef(), 1.0);
  EXPECT_EQ(spec.kl().estimator(), "k1");
}

TEST_F(JobSpecTest, RemoteSpecSkipsFileChecks) {
  v1::JobSpec spec = Load("examples/jobs/ppo.json");
  spec.mutable_models()->set_policy_dir("/models/on/the/cluster");
  EXPECT_TRUE(ValidateJobSpec(spec, {.check_files = false}).ok());
}

}  // namespace
}  // namespace rlhf::jobs
