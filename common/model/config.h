#pragma once

// ModelConfig: the architecture hyper-parameters of a Hugging Face config.json, for the
// families this project runs (GPT-2 and the Llama family: Llama, Qwen2, Mistral).

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace rlhf::model {

// GPT-2 (fused Conv1D attention, learned positions, LayerNorm, GELU MLP) or the Llama
// family (separate projections, RoPE, RMSNorm, SwiGLU MLP, optional GQA).
enum class ModelFamily { kGpt2, kLlama };

// Which head sits on top of the decoder in the checkpoint.
enum class HeadKind { kCausalLm, kSequenceClassification };

// RoPE inverse-frequency parameters (transformers' modeling_rope_utils.py).
struct RopeConfig {
  double theta = 10000.0;
  std::string type = "default";  // "default", "linear" or "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;                  // llama3 only
  double high_freq_factor = 4.0;                 // llama3 only
  int64_t original_max_position_embeddings = 0;  // llama3 only
  double partial_rotary_factor = 1.0;
};

struct ModelConfig {
  std::string architecture;  // e.g. "LlamaForCausalLM", from "architectures"[0]
  std::string model_type;    // "gpt2", "llama", "qwen2" or "mistral"
  ModelFamily family = ModelFamily::kLlama;
  HeadKind head = HeadKind::kCausalLm;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  std::string hidden_act;  // "gelu_new", "silu", ...
  double norm_eps = 1e-6;  // layer_norm_epsilon (GPT-2) or rms_norm_eps
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;

  // Llama family.
  bool qkv_bias = false;  // Qwen2 always; Llama's attention_bias
  bool o_proj_bias = false;
  bool mlp_bias = false;
  RopeConfig rope;
  // Per layer: the sliding attention window in tokens, 0 for full causal attention. Applied
  // in the attention mask (attention.h), as transformers' SDPA path does, so sequences
  // longer than the window are fine.
  std::vector<int64_t> sliding_windows;

  // GPT-2.
  bool scale_attn_weights = true;
  bool scale_attn_by_inverse_layer_idx = false;

  // Sequence classification; 0 means "not in config.json" (the loader then takes it from
  // score.weight's shape, else 1: a reward model).
  int64_t num_labels = 0;

  std::optional<int64_t> pad_token_id;
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;

  // The file as read, so SavePretrained can round-trip fields this struct does not model.
  nlohmann::json raw = nlohmann::json::object();

  // The checkpoint key prefix of the decoder: "transformer" (GPT-2) or "model".
  std::string_view BackbonePrefix() const {
    return family == ModelFamily::kGpt2 ? "transformer" : "model";
  }
  // e.g. "LlamaForSequenceClassification" for this model_type and head.
  std::string ArchitectureFor(HeadKind kind) const;
};

// Parses a config.json object. `source` names the file in error messages. Unknown
// architecture, missing required field or inconsistent values -> InvalidArgument naming
// the field and the file. Optional fields take transformers' defaults for the model type.
absl::StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& json, std::string_view source);

// Reads and parses `path` (a config.json).
absl::StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& path);

// Reads eos_token_id (an int or a list) from generation_config.json in `dir` if present.
// Returns an empty vector when the file or the field is absent.
absl::StatusOr<std::vector<int64_t>> LoadGenerationEosIds(const std::filesystem::path& dir);

}  // namespace rlhf::model
