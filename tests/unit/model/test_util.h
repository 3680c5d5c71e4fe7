#pragma once

// Shared helpers for the model tests: fixture paths, goldens, temp dirs, status matchers.

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include "tests/unit/testing/temp_dir.h"

#include "common/io/safetensors.h"
#include "common/model/generation.h"
#include "common/model/loader.h"

namespace rlhf::model::testing {

inline std::filesystem::path FixtureDir() {
  return std::filesystem::path(RLHF_SOURCE_DIR) / "tests/golden/fixtures/models";
}
inline std::filesystem::path ModelDir(const std::string& name) { return FixtureDir() / name; }

inline const std::vector<std::string>& CausalModelNames() {
  static const std::vector<std::string> kNames = {"gpt2", "llama", "qwen2", "mistral"};
  return kNames;
}

inline nlohmann::json ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

inline const nlohmann::json& Goldens() {
  static const nlohmann::json kGoldens = ReadJson(FixtureDir() / "goldens.json");
  return kGoldens;
}

inline std::vector<std::vector<int64_t>> GoldenPrompts() {
  return Goldens()["prompts"].get<std::vector<std::vector<int64_t>>>();
}

// A float32/int64 tensor from goldens.safetensors (a copy).
inline torch::Tensor GoldenTensor(const std::string& name) {
  static const auto file = [] {
    auto opened = io::SafetensorsFile::Open(FixtureDir() / "goldens.safetensors");
    EXPECT_TRUE(opened.ok()) << opened.status();
    return std::shared_ptr<io::SafetensorsFile>(std::move(*opened));
  }();
  const io::TensorView* view = file->Find(name);
  EXPECT_NE(view, nullptr) << name;
  auto dtype = view->dtype == io::DType::kI64 ? torch::kInt64 : torch::kFloat32;
  return torch::from_blob(const_cast<uint8_t*>(view->data), view->shape, dtype).clone();
}

inline std::shared_ptr<CausalLm> LoadOrDie(const std::string& name, LoadOptions options = {}) {
  auto model = LoadCausalLm(ModelDir(name), options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *model : nullptr;
}

inline torch::Tensor Ids(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kInt64).unsqueeze(0);
}

using ::rlhf::test_support::TempDir;

// Copies a fixture model directory so a test may damage it.
inline std::filesystem::path CopyFixture(const std::string& name, const TempDir& dir) {
  std::filesystem::path dest = dir.path() / name;
  std::filesystem::copy(ModelDir(name), dest, std::filesystem::copy_options::recursive);
  return dest;
}

inline void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

inline float MaxAbsDiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().max().item<float>();
}

// 16 greedy tokens of every golden prompt, alone and as one left-padded batch, equal
// transformers' (goldens.json). Returns the batched output for further checks.
inline GenerationOutput ExpectGreedyMatchesGoldens(CausalLm& model, const std::string& name) {
  const auto prompts = GoldenPrompts();
  const nlohmann::json& golden = Goldens()["models"][name]["prompts"];
  SamplingParams params;
  params.greedy = true;
  params.max_new_tokens = 16;
  std::vector<uint64_t> seeds(prompts.size(), 0);
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto out = Generate(model, std::span(&prompts[i], 1), params, std::span(seeds.data(), 1));
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    EXPECT_EQ(out->tokens[0], golden[i]["greedy"].get<std::vector<int64_t>>()) << name << " " << i;
  }
  auto batched = Generate(model, prompts, params, seeds);
  EXPECT_TRUE(batched.ok()) << batched.status();
  if (!batched.ok()) return {};
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(batched->tokens[i], golden[i]["greedy"].get<std::vector<int64_t>>())
        << name << " batched " << i;
  }
  return *batched;
}

}  // namespace rlhf::model::testing
