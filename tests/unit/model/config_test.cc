// ModelConfig parsing: the fixture configs, transformers' defaults, and clear errors.

#include "common/model/config.h"

#include "common/model/rope.h"
#include "tests/unit/model/test_util.h"

namespace rlhf::model {
namespace {

using ::testing::AllOf;
using testing::FixtureDir;
using ::testing::HasSubstr;
using testing::ReadJson;

nlohmann::json FixtureConfig(const std::string& name) {
  return ReadJson(FixtureDir() / name / "config.json");
}

absl::Status ParseError(const nlohmann::json& json) {
  auto config = ParseModelConfig(json, "test/config.json");
  EXPECT_FALSE(config.ok());
  return config.ok() ? absl::OkStatus() : config.status();
}

TEST(ConfigTest, Gpt2) {
  auto config = ParseModelConfig(FixtureConfig("gpt2"), "gpt2");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->family, ModelFamily::kGpt2);
  EXPECT_EQ(config->head, HeadKind::kCausalLm);
  EXPECT_EQ(config->intermediate_size, 4 * 32);  // n_inner null
  EXPECT_EQ(config->head_dim, 8);
  EXPECT_EQ(config->hidden_act, "gelu_new");
  EXPECT_DOUBLE_EQ(config->norm_eps, 1e-5);
  EXPECT_TRUE(config->tie_word_embeddings);
  EXPECT_EQ(config->eos_token_ids, std::vector<int64_t>{500});
  EXPECT_EQ(config->BackbonePrefix(), "transformer");
}

TEST(ConfigTest, LlamaFamily) {
  auto llama = ParseModelConfig(FixtureConfig("llama"), "llama");
  ASSERT_TRUE(llama.ok()) << llama.status();
  EXPECT_EQ(llama->num_kv_heads, 2);
  EXPECT_EQ(llama->rope.type, "llama3");
  EXPECT_EQ(llama->rope.original_max_position_embeddings, 32);
  EXPECT_FALSE(llama->tie_word_embeddings);
  EXPECT_FALSE(llama->qkv_bias);

  auto qwen = ParseModelConfig(FixtureConfig("qwen2"), "qwen2");
  ASSERT_TRUE(qwen.ok()) << qwen.status();
  EXPECT_TRUE(qwen->qkv_bias);
  EXPECT_FALSE(qwen->o_proj_bias);
  EXPECT_TRUE(qwen->tie_word_embeddings);
  EXPECT_EQ(qwen->sliding_windows, std::vector<int64_t>(2, 0));

  auto mistral = ParseModelConfig(FixtureConfig("mistral"), "mistral");
  ASSERT_TRUE(mistral.ok()) << mistral.status();
  EXPECT_EQ(mistral->head_dim, 16);  // from config, not hidden / heads = 8
  EXPECT_EQ(mistral->num_kv_heads, 1);
  EXPECT_EQ(mistral->sliding_windows, std::vector<int64_t>(2, 8));

  auto seqcls = ParseModelConfig(FixtureConfig("llama-seqcls"), "seqcls");
  ASSERT_TRUE(seqcls.ok()) << seqcls.status();
  EXPECT_EQ(seqcls->head, HeadKind::kSequenceClassification);
  EXPECT_EQ(seqcls->num_labels, 1);
  EXPECT_EQ(seqcls->pad_token_id, 0);
}

TEST(ConfigTest, Qwen2SlidingLayersFollowMaxWindowLayers) {
  nlohmann::json json = FixtureConfig("qwen2");
  json["use_sliding_window"] = true;
  json["sliding_window"] = 16;
  json["max_window_layers"] = 1;
  // transformers 4.57 saves layer_types; when present it decides (configuration_qwen2.py).
  ASSERT_TRUE(json.contains("layer_types"));
  json["layer_types"] = {"sliding_attention", "full_attention"};
  auto config = ParseModelConfig(json, "qwen2");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->sliding_windows, (std::vector<int64_t>{16, 0}));
  json.erase("layer_types");
  config = ParseModelConfig(json, "qwen2");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->sliding_windows, (std::vector<int64_t>{0, 16}));
}

TEST(ConfigTest, RopeInverseFrequenciesMatchTransformersBitForBit) {
  for (const std::string name : {"llama", "qwen2", "mistral"}) {
    auto config = ParseModelConfig(FixtureConfig(name), name);
    ASSERT_TRUE(config.ok()) << config.status();
    torch::Tensor expected = testing::GoldenTensor(name + "/inv_freq");
    EXPECT_TRUE(torch::equal(ComputeRopeInverseFrequencies(*config), expected)) << name;
  }
}

TEST(ConfigTest, UnknownArchitectureIsNamed) {
  nlohmann::json json = FixtureConfig("llama");
  json["architectures"] = {"FalconForCausalLM"};
  absl::Status status = ParseError(json);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), AllOf(HasSubstr("FalconForCausalLM"), HasSubstr("architectures"),
                                      HasSubstr("test/config.json")));
}

TEST(ConfigTest, MissingFieldIsNamed) {
  nlohmann::json json = FixtureConfig("llama");
  json.erase("hidden_size");
  EXPECT_THAT(ParseError(json).message(),
              AllOf(HasSubstr("hidden_size"), HasSubstr("missing"), HasSubstr("test/config.json")));
  json = FixtureConfig("gpt2");
  json.erase("n_layer");
  EXPECT_THAT(ParseError(json).message(), AllOf(HasSubstr("n_layer"), HasSubstr("missing")));
}

TEST(ConfigTest, InconsistentValuesAreNamed) {
  nlohmann::json json = FixtureConfig("qwen2");
  json["num_key_value_heads"] = 3;
  EXPECT_THAT(ParseError(json).message(),
              AllOf(HasSubstr("num_attention_heads"), HasSubstr("num_key_value_heads"),
                    HasSubstr("divisible")));
  json = FixtureConfig("gpt2");
  json["n_embd"] = 30;
  EXPECT_THAT(ParseError(json).message(), AllOf(HasSubstr("n_embd"), HasSubstr("divisible")));
  json = FixtureConfig("llama");
  json["num_hidden_layers"] = -1;
  EXPECT_THAT(ParseError(json).message(),
              AllOf(HasSubstr("num_hidden_layers"), HasSubstr("positive")));
  json = FixtureConfig("llama");
  json["vocab_size"] = "512";
  EXPECT_THAT(ParseError(json).message(), AllOf(HasSubstr("vocab_size"), HasSubstr("integer")));
  json = FixtureConfig("llama");
  json["model_type"] = "qwen2";
  EXPECT_THAT(ParseError(json).message(), HasSubstr("model_type"));
}

TEST(ConfigTest, RopeScalingErrors) {
  nlohmann::json json = FixtureConfig("llama");
  json["rope_scaling"].erase("low_freq_factor");
  EXPECT_THAT(ParseError(json).message(), HasSubstr("rope_scaling.low_freq_factor"));
  json = FixtureConfig("llama");
  json["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_THAT(ParseError(json).message(), AllOf(HasSubstr("rope_type"), HasSubstr("yarn")));
  json = FixtureConfig("llama");
  json["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};  // legacy key
  auto config = ParseModelConfig(json, "test");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope.type, "linear");
}

TEST(ConfigTest, MalformedFileIsNamed) {
  testing::TempDir dir;
  testing::WriteText(dir.path() / "config.json", "{\"model_type\": \"llama\",");
  auto config = LoadModelConfig(dir.path() / "config.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(),
              AllOf(HasSubstr("malformed JSON"), HasSubstr("config.json")));
  testing::WriteText(dir.path() / "config.json", "[1, 2]");
  EXPECT_THAT(LoadModelConfig(dir.path() / "config.json").status().message(),
              HasSubstr("JSON object"));
  EXPECT_EQ(LoadModelConfig(dir.path() / "absent.json").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace rlhf::model
