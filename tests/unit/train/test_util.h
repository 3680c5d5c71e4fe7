#pragma once

// Shared helpers for the common/train tests: fixture models, random batches, temp dirs.

#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/unit/testing/temp_dir.h"

#include "common/train/policy_trainer.h"

namespace rlhf::train::testing {

inline std::filesystem::path ModelDir(const std::string& name) {
  return std::filesystem::path(RLHF_SOURCE_DIR) / "tests/golden/fixtures/models" / name;
}

inline std::unique_ptr<PolicyTrainer> LoadTrainerOrDie(const std::string& name, bool value_head,
                                                       double lr = 1e-3) {
  TrainerOptions options;
  options.optimizer.learning_rate = lr;
  options.chunk_tokens = 7;  // several chunks on the tiny batches
  auto trainer = PolicyTrainer::Load(ModelDir(name), value_head, options);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  return trainer.ok() ? std::move(*trainer) : nullptr;
}

// `rows` sequences with prompts of 1..4 tokens and responses of 0..5 tokens (row 0 always
// has 5), ids in [1, vocab).
inline SequenceBatch RandomBatch(int64_t rows, int64_t vocab, uint32_t seed) {
  std::mt19937 random(seed);
  SequenceBatch batch;
  for (int64_t i = 0; i < rows; ++i) {
    std::vector<int64_t> prompt(1 + random() % 4), response(i == 0 ? 5 : random() % 6);
    for (auto& id : prompt) id = 1 + random() % (vocab - 1);
    for (auto& id : response) id = 1 + random() % (vocab - 1);
    batch.prompts.push_back(prompt);
    batch.responses.push_back(response);
  }
  return batch;
}

// The defaults of algorithm `name`, then `edit` applied.
inline AlgorithmConfig ConfigFor(const std::string& name,
                                 const std::function<void(AlgorithmConfig&)>& edit = {}) {
  auto config = AlgorithmConfigFor(name);
  EXPECT_TRUE(config.ok()) << config.status();
  if (!config.ok()) return AlgorithmConfig{};
  if (edit) edit(*config);
  return *config;
}

using ::rlhf::test_support::TempDir;

}  // namespace rlhf::train::testing
