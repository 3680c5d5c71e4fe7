// SavePretrained -> LoadCausalLm / LoadSequenceClassifier round trips.

#include "common/model/save.h"

#include "tests/unit/model/test_util.h"

namespace rlhf::model {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

void ExpectSameParameters(const torch::nn::Module& a, const torch::nn::Module& b) {
  auto pa = a.named_parameters();
  auto pb = b.named_parameters();
  ASSERT_EQ(pa.keys(), pb.keys());
  for (const auto& item : pa) {
    EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
  }
}

std::vector<std::string> SavedNames(const fs::path& dir) {
  auto checkpoint = io::SafetensorsCheckpoint::Open(dir);
  EXPECT_TRUE(checkpoint.ok()) << checkpoint.status();
  return checkpoint.ok() ? (*checkpoint)->names() : std::vector<std::string>();
}

class SaveLoadTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SaveLoadTest, RoundTripIsIdentical) {
  const std::string name = GetParam();
  auto model = testing::LoadOrDie(name);
  ASSERT_NE(model, nullptr);
  testing::TempDir tmp;
  const fs::path out = tmp.path() / "saved";
  SaveOptions options;
  options.tokenizer_dir = testing::ModelDir("gpt2");  // the fixture that ships a tokenizer
  ASSERT_TRUE(SavePretrained(*model, out, options).ok());
  EXPECT_TRUE(fs::exists(out / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(out / "generation_config.json"));
  auto reloaded = LoadCausalLm(out);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  ExpectSameParameters(*model, **reloaded);
  EXPECT_TRUE((*reloaded)->load_warnings().empty());
  const auto prompt = testing::GoldenPrompts()[1];
  EXPECT_TRUE(torch::equal(*model->Forward(testing::Ids(prompt)),
                           *(*reloaded)->Forward(testing::Ids(prompt))));
  // Tied weights are stored once, under the embedding's name (as transformers saves them).
  if (model->config().tie_word_embeddings) {
    EXPECT_THAT(SavedNames(out), Not(Contains("lm_head.weight")));
  } else {
    EXPECT_THAT(SavedNames(out), Contains("lm_head.weight"));
  }
  // config.json round-trips every original field.
  nlohmann::json original = testing::ReadJson(testing::ModelDir(name) / "config.json");
  nlohmann::json saved = testing::ReadJson(out / "config.json");
  EXPECT_EQ(original, saved);
  // No staging directories left behind.
  for (const auto& entry : fs::directory_iterator(tmp.path())) {
    EXPECT_EQ(entry.path().filename(), "saved");
  }
}

TEST_P(SaveLoadTest, ShardedAndReplacedAtomically) {
  auto model = testing::LoadOrDie(GetParam());
  ASSERT_NE(model, nullptr);
  testing::TempDir tmp;
  const fs::path out = tmp.path() / "saved";
  ASSERT_TRUE(SavePretrained(*model, out).ok());
  fs::create_directories(out / "trainer");
  testing::WriteText(out / "trainer" / "state.json", "{}");
  SaveOptions options;
  options.max_shard_bytes = 20000;
  // Replaces the first save ("out/" names the same directory), keeping the trainer's files.
  ASSERT_TRUE(SavePretrained(*model, out.string() + "/", options).ok());
  EXPECT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(out / "model.safetensors"));
  EXPECT_TRUE(fs::exists(out / "trainer" / "state.json"));
  EXPECT_EQ(std::distance(fs::directory_iterator(tmp.path()), fs::directory_iterator()), 1);
  auto reloaded = LoadCausalLm(out);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  ExpectSameParameters(*model, **reloaded);
}

INSTANTIATE_TEST_SUITE_P(Models, SaveLoadTest, ::testing::ValuesIn(testing::CausalModelNames()));

TEST(SaveLoadValueHeadTest, ValueHeadIsSavedInTrlLayout) {
  LoadOptions options;
  options.value_head = true;
  options.init_seed = 9;
  auto model = testing::LoadOrDie("llama", options);
  ASSERT_NE(model, nullptr);
  ASSERT_TRUE(model->has_value_head());
  ASSERT_EQ(model->load_warnings().size(), 1u);
  EXPECT_THAT(model->load_warnings()[0], HasSubstr("v_head.summary.weight"));
  testing::TempDir tmp;
  ASSERT_TRUE(SavePretrained(*model, tmp.path() / "ppo").ok());
  EXPECT_THAT(SavedNames(tmp.path() / "ppo"), Contains("v_head.summary.bias"));
  auto reloaded = LoadCausalLm(tmp.path() / "ppo", options);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  ExpectSameParameters(*model, **reloaded);
  EXPECT_TRUE((*reloaded)->load_warnings().empty());
  // Without a value head the extra tensors are ignored, with a warning.
  auto plain = LoadCausalLm(tmp.path() / "ppo");
  ASSERT_TRUE(plain.ok()) << plain.status();
  ASSERT_EQ((*plain)->load_warnings().size(), 1u);
  EXPECT_THAT((*plain)->load_warnings()[0], HasSubstr("v_head.summary.weight"));
}

TEST(SaveLoadSequenceClassifierTest, RewardModelFromCausalCheckpoint) {
  LoadOptions options;
  options.init_seed = 3;
  auto model = LoadSequenceClassifier(testing::ModelDir("llama"), options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->num_labels(), 1);
  EXPECT_EQ((*model)->config().architecture, "LlamaForSequenceClassification");
  ASSERT_FALSE((*model)->load_warnings().empty());
  EXPECT_THAT((*model)->load_warnings().back(), HasSubstr("score.weight"));
  testing::TempDir tmp;
  ASSERT_TRUE(SavePretrained(**model, tmp.path() / "rm").ok());
  nlohmann::json config = testing::ReadJson(tmp.path() / "rm" / "config.json");
  EXPECT_EQ(config["architectures"][0], "LlamaForSequenceClassification");
  EXPECT_EQ(config["id2label"].size(), 1u);
  EXPECT_THAT(SavedNames(tmp.path() / "rm"), Not(Contains("lm_head.weight")));
  auto reloaded = LoadSequenceClassifier(tmp.path() / "rm");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  ExpectSameParameters(**model, **reloaded);
  const auto prompt = testing::GoldenPrompts()[0];
  EXPECT_TRUE(torch::equal(*(*model)->Score(testing::Ids(prompt)),
                           *(*reloaded)->Score(testing::Ids(prompt))));
}

TEST(SaveLoadDtypeTest, Bfloat16Save) {
  auto model = testing::LoadOrDie("qwen2");
  ASSERT_NE(model, nullptr);
  testing::TempDir tmp;
  SaveOptions options;
  options.dtype = torch::kBFloat16;
  ASSERT_TRUE(SavePretrained(*model, tmp.path() / "bf16", options).ok());
  EXPECT_EQ(testing::ReadJson(tmp.path() / "bf16" / "config.json")["dtype"], "bfloat16");
  auto checkpoint = io::SafetensorsCheckpoint::Open(tmp.path() / "bf16");
  ASSERT_TRUE(checkpoint.ok());
  EXPECT_EQ((*checkpoint)->tensors().front()->dtype, io::DType::kBF16);
  auto reloaded = LoadCausalLm(tmp.path() / "bf16");  // converted back to float32
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ((*reloaded)->dtype(), torch::kFloat32);
  torch::Tensor original = model->LmHeadWeight();
  EXPECT_TRUE(
      torch::equal((*reloaded)->LmHeadWeight(), original.to(torch::kBFloat16).to(torch::kFloat32)));
}

}  // namespace
}  // namespace rlhf::model
