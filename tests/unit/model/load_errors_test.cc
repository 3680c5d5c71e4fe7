// Bad checkpoints: each a clear error naming what is wrong, never a crash.

#include <map>

#include "tests/unit/model/test_util.h"

namespace rlhf::model {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// Rewrites dir/model.safetensors through `edit`, which may drop, rename or add tensors.
void RewriteWeights(const fs::path& dir,
                    const std::function<void(std::vector<io::TensorView>&)>& edit) {
  auto file = io::SafetensorsFile::Open(dir / "model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<io::TensorView> views = (*file)->tensors();
  edit(views);
  absl::Status status = io::WriteSafetensors(dir / "model.safetensors", views, {{"format", "pt"}});
  ASSERT_TRUE(status.ok()) << status;
}

absl::Status LoadError(const fs::path& dir) {
  auto model = LoadCausalLm(dir);
  EXPECT_FALSE(model.ok());
  return model.ok() ? absl::OkStatus() : model.status();
}

TEST(LoadErrorsTest, MissingTensorIsNamed) {
  testing::TempDir tmp;
  fs::path dir = testing::CopyFixture("llama", tmp);
  RewriteWeights(dir, [](std::vector<io::TensorView>& views) {
    std::erase_if(views, [](const io::TensorView& v) {
      return v.name == "model.layers.1.mlp.up_proj.weight";
    });
  });
  absl::Status status = LoadError(dir);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("model.layers.1.mlp.up_proj.weight"), HasSubstr(dir.string())));
}

TEST(LoadErrorsTest, ShapeMismatchNamesBothShapes) {
  testing::TempDir tmp;
  fs::path dir = testing::CopyFixture("llama", tmp);
  nlohmann::json config = testing::ReadJson(dir / "config.json");
  config["intermediate_size"] = 48;
  testing::WriteText(dir / "config.json", config.dump());
  EXPECT_THAT(LoadError(dir).message(),
              AllOf(HasSubstr("model.layers.0.mlp.gate_proj.weight"), HasSubstr("[64, 32]"),
                    HasSubstr("expected [48, 32]")));
}

TEST(LoadErrorsTest, UnsupportedDtypeIsNamed) {
  testing::TempDir tmp;
  fs::path dir = testing::CopyFixture("gpt2", tmp);
  std::vector<int32_t> ints(32, 1);
  RewriteWeights(dir, [&](std::vector<io::TensorView>& views) {
    for (auto& v : views) {
      if (v.name == "transformer.ln_f.bias") {
        v.dtype = io::DType::kI32;
        v.data = reinterpret_cast<const uint8_t*>(ints.data());
      }
    }
  });
  EXPECT_THAT(LoadError(dir).message(),
              AllOf(HasSubstr("transformer.ln_f.bias"), HasSubstr("I32")));
}

TEST(LoadErrorsTest, ConfigProblemsAreNamed) {
  testing::TempDir tmp;
  fs::path dir = testing::CopyFixture("qwen2", tmp);
  nlohmann::json config = testing::ReadJson(dir / "config.json");
  config["architectures"] = {"MambaForCausalLM"};
  testing::WriteText(dir / "config.json", config.dump());
  EXPECT_THAT(LoadError(dir).message(),
              AllOf(HasSubstr("MambaForCausalLM"), HasSubstr("config.json")));
  testing::WriteText(dir / "config.json", "{\"architectures\": [");
  EXPECT_THAT(LoadError(dir).message(),
              AllOf(HasSubstr("malformed JSON"), HasSubstr("config.json")));
  fs::remove(dir / "config.json");
  EXPECT_EQ(LoadError(dir).code(), absl::StatusCode::kNotFound);
}

TEST(LoadErrorsTest, TruncatedSafetensors) {
  testing::TempDir tmp;
  fs::path dir = testing::CopyFixture("mistral", tmp);
  const fs::path file = dir / "model.safetensors";
  fs::resize_file(file, fs::file_size(file) / 2);
  absl::Status status = LoadError(dir);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("model.safetensors"));
  fs::resize_file(file, 5);  // not even a header length
  EXPECT_THAT(LoadError(dir).message(), HasSubstr("model.safetensors"));
  fs::remove(file);
  EXPECT_EQ(LoadError(dir).code(), absl::StatusCode::kNotFound);
}

TEST(LoadErrorsTest, WrongLoaderAndBadOptions) {
  EXPECT_THAT(LoadError(testing::ModelDir("llama-seqcls")).message(),
              HasSubstr("LoadSequenceClassifier"));
  LoadOptions options;
  options.dtype = torch::kInt32;
  auto model = LoadCausalLm(testing::ModelDir("gpt2"), options);
  ASSERT_FALSE(model.ok());
  EXPECT_THAT(model.status().message(), HasSubstr("dtype"));
  EXPECT_EQ(LoadCausalLm("/nonexistent/model").status().code(), absl::StatusCode::kNotFound);
}

TEST(LoadWarningsTest, ExtraTensorsAreIgnoredButListed) {
  testing::TempDir tmp;
  fs::path dir = testing::CopyFixture("gpt2", tmp);
  std::vector<float> mask(16, 1.0f);
  RewriteWeights(dir, [&](std::vector<io::TensorView>& views) {
    views.push_back({"transformer.h.0.attn.bias",
                     io::DType::kF32,
                     {4, 4},
                     reinterpret_cast<const uint8_t*>(mask.data()),
                     64});
  });
  auto model = LoadCausalLm(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ((*model)->load_warnings().size(), 1u);
  EXPECT_THAT((*model)->load_warnings()[0], HasSubstr("transformer.h.0.attn.bias"));
}

TEST(LoadWarningsTest, BaseModelCheckpointWithoutPrefixLoads) {
  // The original gpt2 checkpoint names tensors "h.0.attn.c_attn.weight" (GPT2Model keys).
  testing::TempDir tmp;
  fs::path dir = testing::CopyFixture("gpt2", tmp);
  RewriteWeights(dir, [](std::vector<io::TensorView>& views) {
    for (auto& v : views) {
      if (v.name.starts_with("transformer.")) v.name = v.name.substr(12);
    }
  });
  auto model = LoadCausalLm(dir);
  ASSERT_TRUE(model.ok()) << model.status();
  auto reference = testing::LoadOrDie("gpt2");
  for (const auto& item : reference->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), (*model)->named_parameters()[item.key()]));
  }
}

}  // namespace
}  // namespace rlhf::model
