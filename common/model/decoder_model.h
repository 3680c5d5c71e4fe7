#pragma once

// DecoderModel: what CausalLm and SequenceClassifier share: the config, the decoder
// registered under its checkpoint prefix ("transformer" or "model"), and the files that
// came with the checkpoint (generation_config.json). Parameter names equal the Hugging
// Face checkpoint keys, so loading and saving walk named_parameters().
//
// Not thread-safe: a model runs one forward at a time (generation and training each own
// theirs).

#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "common/model/config.h"
#include "common/model/decoder.h"
#include "common/model/kv_cache.h"

namespace rlhf::model {

class DecoderModel : public torch::nn::Module {
 public:
  const ModelConfig& config() const { return config_; }
  DecoderImpl& decoder() { return *decoder_; }

  torch::Device device() const;
  torch::ScalarType dtype() const;

  // Final hidden states [B, T, hidden] for input_ids [B, T]. `attention_mask` [B, S]
  // (S = cached + T; 1 real, 0 padding) and `position_ids` [B, T] may be undefined; see
  // BuildAttentionContext. Appends to `cache` when given. Autograd records the graph
  // unless the caller disabled it. Throws c10::Error: use HiddenStates at boundaries.
  torch::Tensor ForwardHidden(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                              const torch::Tensor& position_ids, KvCache* cache);

  // ForwardHidden with input checks, errors as Status.
  absl::StatusOr<torch::Tensor> HiddenStates(const torch::Tensor& input_ids,
                                             const torch::Tensor& attention_mask = {},
                                             KvCache* cache = nullptr);

  // Re-initialises every parameter the way transformers' _init_weights does (linear and
  // embedding weights ~ N(0, initializer_range), biases 0, norm weights 1), from `seed`.
  void InitWeights(uint64_t seed);

  // generation_config.json as loaded (null when the checkpoint had none).
  const nlohmann::json& generation_config() const { return generation_config_; }
  void set_generation_config(nlohmann::json json) { generation_config_ = std::move(json); }

  // Warnings from loading (unexpected tensors, newly initialised heads).
  const std::vector<std::string>& load_warnings() const { return load_warnings_; }
  void add_load_warning(std::string warning) { load_warnings_.push_back(std::move(warning)); }

 protected:
  explicit DecoderModel(ModelConfig config);
  ModelConfig config_;

 private:
  std::shared_ptr<DecoderImpl> decoder_;
  nlohmann::json generation_config_;
  std::vector<std::string> load_warnings_;
};

// Checks input_ids [B, T] (int64, ids in [0, vocab)) and attention_mask [B, S >= T].
// InvalidArgument naming the problem.
absl::Status ValidateInputs(const ModelConfig& config, const torch::Tensor& input_ids,
                            const torch::Tensor& attention_mask, int64_t cached_tokens);

}  // namespace rlhf::model
