// LoRA against PEFT 0.17.1 (tests/golden/make_lora_goldens.py): an adapter PEFT wrote for
// the tiny GPT-2 (Conv1D, fan_in_fan_out), Llama and Qwen2 loads here and gives PEFT's
// logits; the merged weights give PEFT's merge_and_unload logits; our adapter directory
// reloads to the same outputs; a fresh adapter (B = 0) changes nothing; what this runtime
// does not run is refused by name.

#include "common/model/lora.h"

#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/io/safetensors_file.h"
#include "common/model/loader.h"
#include "common/model/peft_adapter.h"

namespace rlhf::model {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kFixtures = fs::path(RLHF_SOURCE_DIR) / "tests/golden/fixtures";

std::shared_ptr<CausalLm> Base(const std::string& name) {
  auto model = LoadCausalLm(kFixtures / "models" / name, {});
  EXPECT_TRUE(model.ok()) << model.status();
  (*model)->eval();
  return *model;
}

torch::Tensor Expected(const std::string& name, const std::string& key) {
  auto file = io::SafetensorsFile::Open(kFixtures / "lora" / name / "expected.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  const io::TensorView* view = (*file)->Find(key);
  EXPECT_NE(view, nullptr) << key;
  const auto dtype = view->dtype == io::DType::kI64 ? torch::kInt64 : torch::kFloat32;
  return torch::from_blob(const_cast<uint8_t*>(view->data), view->shape,
                          torch::TensorOptions().dtype(dtype))
      .clone();
}

torch::Tensor Logits(CausalLm& model, const torch::Tensor& input_ids) {
  torch::NoGradGuard no_grad;
  auto logits = model.Forward(input_ids);
  EXPECT_TRUE(logits.ok()) << logits.status();
  return *logits;
}

class LoraGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LoraGoldenTest, PeftAdapterGivesPeftLogits) {
  const std::string name = GetParam();
  auto model = Base(name);
  auto options = LoadPeftAdapter(*model, kFixtures / "lora" / name);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->rank, 4);
  EXPECT_FALSE(LoraLayers(*model).empty());
  const torch::Tensor input_ids = Expected(name, "input_ids");
  const torch::Tensor logits = Logits(*model, input_ids);
  const torch::Tensor expected = Expected(name, "logits");
  EXPECT_TRUE(torch::allclose(logits, expected, 1e-5, 1e-5))
      << (logits - expected).abs().max().item<double>();
  // The adapter matters: the base alone is far from PEFT's numbers.
  EXPECT_GT((Logits(*Base(name), input_ids) - expected).abs().max().item<double>(), 1e-3);

  // Merged weights (for export and weight sync) in a plain base model.
  auto merged = MergeLoraWeights(*model, [&] {
    std::vector<std::pair<std::string, torch::Tensor>> weights;
    for (const auto& item : model->named_parameters())
      weights.emplace_back(item.key(), item.value());
    return weights;
  }());
  auto plain = Base(name);
  {
    torch::NoGradGuard no_grad;
    auto params = plain->named_parameters();
    for (const auto& [key, weight] : merged) params[key].copy_(weight);
  }
  const torch::Tensor merged_expected = Expected(name, "merged_logits");
  EXPECT_TRUE(torch::allclose(Logits(*plain, input_ids), merged_expected, 1e-5, 1e-5));

  // Our adapter directory reloads to the same outputs, bit for bit.
  const fs::path dir =
      fs::temp_directory_path() / ("rlhf_lora_" + name + std::to_string(::getpid()));
  ASSERT_TRUE(SavePeftAdapter(*model, dir, *options, "base").ok());
  auto reloaded = Base(name);
  ASSERT_TRUE(LoadPeftAdapter(*reloaded, dir).ok());
  EXPECT_TRUE(torch::equal(Logits(*reloaded, input_ids), logits));
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Models, LoraGoldenTest, ::testing::Values("gpt2", "llama", "qwen2"));

TEST(LoraTest, AFreshAdapterChangesNothingAndOnlyItTrains) {
  auto model = Base("llama");
  const torch::Tensor input_ids = torch::tensor({{1, 2, 3, 4}});
  const torch::Tensor before = Logits(*model, input_ids);
  LoraOptions options{.rank = 2, .alpha = 4, .target_modules = {"q_proj", "v_proj"}, .seed = 3};
  auto names = AttachLora(*model, options);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, ::testing::ElementsAre(
                          "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                          "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"));
  EXPECT_TRUE(torch::equal(Logits(*model, input_ids), before));  // B = 0
  // Gradients reach A's partner B through the adapter.
  auto logits = model->Forward(input_ids);
  ASSERT_TRUE(logits.ok());
  logits->sum().backward();
  for (const auto& [name, layer] : LoraLayers(*model)) {
    ASSERT_TRUE(layer->lora_b().grad().defined()) << name;
    EXPECT_GT(layer->lora_b().grad().abs().sum().item<double>(), 0) << name;
  }
  // The module's own parameters stay the checkpoint's names (export and sync unchanged).
  for (const auto& item : model->named_parameters()) {
    EXPECT_EQ(item.key().find("lora"), std::string::npos) << item.key();
  }
}

TEST(LoraTest, RefusesWhatItDoesNotRun) {
  auto model = Base("gpt2");
  LoraOptions options{.rank = 4, .alpha = 8, .target_modules = {"q_proj"}};
  EXPECT_THAT(std::string(AttachLora(*model, options).status().message()),
              HasSubstr("\"q_proj\" matches no dense layer; this model has c_attn, c_fc, c_proj"));
  options.target_modules = {"c_attn"};
  options.rank = 0;
  EXPECT_FALSE(AttachLora(*model, options).ok());

  const fs::path dir = fs::temp_directory_path() / ("rlhf_lora_bad" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(kFixtures / "lora/gpt2/adapter_model.safetensors",
                dir / "adapter_model.safetensors");
  for (
      const auto& [config, words] : std::vector<std::pair<std::string, std::string>>{
          {R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["c_attn"], "use_dora": true})",
           "use_dora: not supported here"},
          {R"({"peft_type": "IA3", "target_modules": ["c_attn"]})", "peft_type: only LORA"},
          {R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ".*attn"})",
           "target_modules: must be a list"},
          {R"({"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["c_attn"]})",
           "belongs to no adapted layer"},
      }) {
    std::ofstream(dir / "adapter_config.json") << config;
    auto fresh = Base("gpt2");
    EXPECT_THAT(std::string(LoadPeftAdapter(*fresh, dir).status().message()), HasSubstr(words));
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace rlhf::model
