#include "common/model/config.h"

#include <array>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"

namespace rlhf::model {
namespace {

using nlohmann::json;

struct ArchitectureEntry {
  std::string_view model_type;
  ModelFamily family;
  std::string_view causal_lm;
  std::string_view sequence_classification;
};

constexpr std::array<ArchitectureEntry, 4> kArchitectures = {{
    {"gpt2", ModelFamily::kGpt2, "GPT2LMHeadModel", "GPT2ForSequenceClassification"},
    {"llama", ModelFamily::kLlama, "LlamaForCausalLM", "LlamaForSequenceClassification"},
    {"qwen2", ModelFamily::kLlama, "Qwen2ForCausalLM", "Qwen2ForSequenceClassification"},
    {"mistral", ModelFamily::kLlama, "MistralForCausalLM", "MistralForSequenceClassification"},
}};

// Field readers. Each error names the field and the file, as the loader's callers (job
// specs, CLI) show these messages to users verbatim.
class FieldReader {
 public:
  FieldReader(const json& object, std::string_view source) : object_(object), source_(source) {}

  absl::Status Error(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("config field \"", field, "\" ", what, " in ", source_));
  }

  bool Has(const std::string& field) const {
    auto it = object_.find(field);
    return it != object_.end() && !it->is_null();
  }

  absl::StatusOr<int64_t> Int(const std::string& field) const {
    if (!Has(field)) return Error(field, "is missing");
    const json& value = object_.at(field);
    if (!value.is_number_integer()) return Error(field, "must be an integer");
    return value.get<int64_t>();
  }
  absl::StatusOr<int64_t> PositiveInt(const std::string& field) const {
    absl::StatusOr<int64_t> value = Int(field);
    if (value.ok() && *value <= 0) {
      return Error(field, absl::StrCat("must be positive, got ", *value));
    }
    return value;
  }
  absl::StatusOr<int64_t> PositiveIntOr(const std::string& field, int64_t fallback) const {
    return Has(field) ? PositiveInt(field) : fallback;
  }
  absl::StatusOr<double> PositiveDoubleOr(const std::string& field, double fallback) const {
    if (!Has(field)) return fallback;
    const json& value = object_.at(field);
    if (!value.is_number()) return Error(field, "must be a number");
    double number = value.get<double>();
    if (!(number > 0)) return Error(field, absl::StrCat("must be positive, got ", number));
    return number;
  }
  absl::StatusOr<bool> BoolOr(const std::string& field, bool fallback) const {
    if (!Has(field)) return fallback;
    const json& value = object_.at(field);
    if (!value.is_boolean()) return Error(field, "must be true or false");
    return value.get<bool>();
  }
  absl::StatusOr<std::string> StringOr(const std::string& field,
                                       const std::string& fallback) const {
    if (!Has(field)) return std::string(fallback);
    const json& value = object_.at(field);
    if (!value.is_string()) return Error(field, "must be a string");
    return value.get<std::string>();
  }
  absl::StatusOr<std::optional<int64_t>> OptionalInt(const std::string& field) const {
    if (!Has(field)) return std::optional<int64_t>();
    absl::StatusOr<int64_t> value = Int(field);
    if (!value.ok()) return value.status();
    return std::optional<int64_t>(*value);
  }
  // An int or a list of ints (eos_token_id may be either).
  absl::StatusOr<std::vector<int64_t>> IntList(const std::string& field) const {
    std::vector<int64_t> out;
    if (!Has(field)) return out;
    const json& value = object_.at(field);
    if (value.is_number_integer()) return std::vector<int64_t>{value.get<int64_t>()};
    if (!value.is_array()) return Error(field, "must be an integer or a list of integers");
    for (const json& item : value) {
      if (!item.is_number_integer()) return Error(field, "must hold only integers");
      out.push_back(item.get<int64_t>());
    }
    return out;
  }

 private:
  const json& object_;
  std::string source_;
};

const std::array<const char*, 7> kActivations = {
    "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu", "relu", "silu", "swish"};

absl::Status CheckActivation(const FieldReader& reader, const std::string& field,
                             const std::string& act) {
  for (const char* known : kActivations) {
    if (act == known) return absl::OkStatus();
  }
  return reader.Error(field, absl::StrCat("has unsupported value \"", act, "\" (supported: ",
                                          absl::StrJoin(kActivations, ", "), ")"));
}

absl::Status ParseGpt2(const FieldReader& r, ModelConfig& c) {
  RLHF_ASSIGN_OR_RETURN(c.vocab_size, r.PositiveInt("vocab_size"));
  RLHF_ASSIGN_OR_RETURN(c.hidden_size, r.PositiveInt("n_embd"));
  RLHF_ASSIGN_OR_RETURN(c.num_layers, r.PositiveInt("n_layer"));
  RLHF_ASSIGN_OR_RETURN(c.num_heads, r.PositiveInt("n_head"));
  RLHF_ASSIGN_OR_RETURN(c.max_position_embeddings, r.PositiveInt("n_positions"));
  // modeling_gpt2.py GPT2Block: inner_dim = n_inner if n_inner is not None else 4 * hidden.
  RLHF_ASSIGN_OR_RETURN(c.intermediate_size, r.PositiveIntOr("n_inner", 4 * c.hidden_size));
  RLHF_ASSIGN_OR_RETURN(c.hidden_act, r.StringOr("activation_function", "gelu_new"));
  if (absl::Status s = CheckActivation(r, "activation_function", c.hidden_act); !s.ok()) return s;
  RLHF_ASSIGN_OR_RETURN(c.norm_eps, r.PositiveDoubleOr("layer_norm_epsilon", 1e-5));
  RLHF_ASSIGN_OR_RETURN(c.scale_attn_weights, r.BoolOr("scale_attn_weights", true));
  RLHF_ASSIGN_OR_RETURN(c.scale_attn_by_inverse_layer_idx,
                        r.BoolOr("scale_attn_by_inverse_layer_idx", false));
  // PretrainedConfig's default; GPT-2 checkpoints are tied.
  RLHF_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.BoolOr("tie_word_embeddings", true));
  if (c.hidden_size % c.num_heads != 0) {
    return r.Error("n_embd", absl::StrCat("(", c.hidden_size, ") must be divisible by n_head (",
                                          c.num_heads, ")"));
  }
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / c.num_heads;
  c.sliding_windows.assign(c.num_layers, 0);
  return absl::OkStatus();
}

absl::Status ParseRope(const FieldReader& r, const json& object, std::string_view source,
                       RopeConfig& rope) {
  RLHF_ASSIGN_OR_RETURN(rope.theta, r.PositiveDoubleOr("rope_theta", 10000.0));
  RLHF_ASSIGN_OR_RETURN(rope.partial_rotary_factor,
                        r.PositiveDoubleOr("partial_rotary_factor", 1.0));
  if (!r.Has("rope_scaling")) return absl::OkStatus();
  const json& scaling = object.at("rope_scaling");
  if (!scaling.is_object()) return r.Error("rope_scaling", "must be an object or null");
  FieldReader sr(scaling, source);
  // configuration_llama.py: "BC: if there is a 'type' field, copy it it to 'rope_type'."
  std::string type;
  RLHF_ASSIGN_OR_RETURN(type, sr.StringOr("type", "default"));
  RLHF_ASSIGN_OR_RETURN(type, sr.StringOr("rope_type", type));
  rope.type = type;
  if (type == "default") return absl::OkStatus();
  if (type != "linear" && type != "llama3") {
    return r.Error(
        "rope_scaling.rope_type",
        absl::StrCat("has unsupported value \"", type, "\" (supported: default, linear, llama3)"));
  }
  if (!sr.Has("factor")) return r.Error("rope_scaling.factor", "is missing");
  RLHF_ASSIGN_OR_RETURN(rope.factor, sr.PositiveDoubleOr("factor", 1.0));
  if (type == "llama3") {
    for (const char* field :
         {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
      if (!sr.Has(field)) return r.Error(absl::StrCat("rope_scaling.", field), "is missing");
    }
    RLHF_ASSIGN_OR_RETURN(rope.low_freq_factor, sr.PositiveDoubleOr("low_freq_factor", 1.0));
    RLHF_ASSIGN_OR_RETURN(rope.high_freq_factor, sr.PositiveDoubleOr("high_freq_factor", 4.0));
    RLHF_ASSIGN_OR_RETURN(rope.original_max_position_embeddings,
                          sr.PositiveInt("original_max_position_embeddings"));
    if (rope.high_freq_factor <= rope.low_freq_factor) {
      return r.Error("rope_scaling.high_freq_factor", "must be greater than low_freq_factor");
    }
  }
  return absl::OkStatus();
}

// Per-layer sliding windows as transformers 4.57 decides them: Mistral slides every layer
// when sliding_window is set (configuration_mistral.py); Qwen2 slides layers >=
// max_window_layers when use_sliding_window (configuration_qwen2.py), or as layer_types says.
absl::Status ParseSlidingWindows(const FieldReader& r, const json& object, ModelConfig& c) {
  c.sliding_windows.assign(c.num_layers, 0);
  if (c.model_type == "mistral") {
    if (!r.Has("sliding_window")) return absl::OkStatus();
    int64_t window;
    RLHF_ASSIGN_OR_RETURN(window, r.PositiveInt("sliding_window"));
    c.sliding_windows.assign(c.num_layers, window);
  } else if (c.model_type == "qwen2") {
    bool use_sliding;
    RLHF_ASSIGN_OR_RETURN(use_sliding, r.BoolOr("use_sliding_window", false));
    if (!use_sliding || !r.Has("sliding_window")) return absl::OkStatus();
    int64_t window, max_window_layers;
    RLHF_ASSIGN_OR_RETURN(window, r.PositiveInt("sliding_window"));
    RLHF_ASSIGN_OR_RETURN(max_window_layers, r.PositiveIntOr("max_window_layers", 28));
    if (r.Has("layer_types")) {
      const json& types = object.at("layer_types");
      if (!types.is_array() || static_cast<int64_t>(types.size()) != c.num_layers) {
        return r.Error("layer_types", "must be a list with one entry per layer");
      }
      for (int64_t i = 0; i < c.num_layers; ++i) {
        if (types[i] == "sliding_attention") c.sliding_windows[i] = window;
      }
    } else {
      for (int64_t i = max_window_layers; i < c.num_layers; ++i) c.sliding_windows[i] = window;
    }
  }
  return absl::OkStatus();
}

absl::Status ParseLlamaFamily(const FieldReader& r, const json& object, std::string_view source,
                              ModelConfig& c) {
  RLHF_ASSIGN_OR_RETURN(c.vocab_size, r.PositiveInt("vocab_size"));
  RLHF_ASSIGN_OR_RETURN(c.hidden_size, r.PositiveInt("hidden_size"));
  RLHF_ASSIGN_OR_RETURN(c.num_layers, r.PositiveInt("num_hidden_layers"));
  RLHF_ASSIGN_OR_RETURN(c.num_heads, r.PositiveInt("num_attention_heads"));
  RLHF_ASSIGN_OR_RETURN(c.intermediate_size, r.PositiveInt("intermediate_size"));
  RLHF_ASSIGN_OR_RETURN(c.max_position_embeddings, r.PositiveInt("max_position_embeddings"));
  // configuration_llama.py: "if num_key_value_heads is None: = num_attention_heads".
  RLHF_ASSIGN_OR_RETURN(c.num_kv_heads, r.PositiveIntOr("num_key_value_heads", c.num_heads));
  RLHF_ASSIGN_OR_RETURN(c.hidden_act, r.StringOr("hidden_act", "silu"));
  if (absl::Status s = CheckActivation(r, "hidden_act", c.hidden_act); !s.ok()) return s;
  RLHF_ASSIGN_OR_RETURN(c.norm_eps, r.PositiveDoubleOr("rms_norm_eps", 1e-6));
  RLHF_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.BoolOr("tie_word_embeddings", false));
  if (c.num_heads % c.num_kv_heads != 0) {
    return r.Error("num_attention_heads",
                   absl::StrCat("(", c.num_heads, ") must be divisible by num_key_value_heads (",
                                c.num_kv_heads, ")"));
  }
  if (r.Has("head_dim")) {
    RLHF_ASSIGN_OR_RETURN(c.head_dim, r.PositiveInt("head_dim"));
  } else if (c.hidden_size % c.num_heads != 0) {
    return r.Error("hidden_size",
                   absl::StrCat("(", c.hidden_size, ") must be divisible by num_attention_heads (",
                                c.num_heads, ") when head_dim is not given"));
  } else {
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.model_type == "qwen2") {
    c.qkv_bias = true;  // modeling_qwen2.py: q/k/v_proj bias=True, o_proj bias=False
  } else if (c.model_type == "llama") {
    bool attention_bias;
    RLHF_ASSIGN_OR_RETURN(attention_bias, r.BoolOr("attention_bias", false));
    c.qkv_bias = c.o_proj_bias = attention_bias;
    RLHF_ASSIGN_OR_RETURN(c.mlp_bias, r.BoolOr("mlp_bias", false));
  }
  if (absl::Status s = ParseRope(r, object, source, c.rope); !s.ok()) return s;
  // modeling_llama.py's apply_rotary_pos_emb rotates the whole head, so Llama-family models
  // only run with the full rotary dimension.
  if (c.rope.partial_rotary_factor != 1.0) {
    return r.Error("partial_rotary_factor", "must be 1.0 for this architecture");
  }
  if (c.head_dim % 2 != 0) return r.Error("head_dim", "must be even for rotary embeddings");
  return ParseSlidingWindows(r, object, c);
}

}  // namespace

std::string ModelConfig::ArchitectureFor(HeadKind kind) const {
  for (const ArchitectureEntry& entry : kArchitectures) {
    if (entry.model_type == model_type) {
      return std::string(kind == HeadKind::kCausalLm ? entry.causal_lm
                                                     : entry.sequence_classification);
    }
  }
  return architecture;
}

absl::StatusOr<ModelConfig> ParseModelConfig(const json& object, std::string_view source) {
  if (!object.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(std::string(source), " must hold a JSON object"));
  }
  FieldReader r(object, source);
  ModelConfig c;
  c.raw = object;
  std::string model_type;
  RLHF_ASSIGN_OR_RETURN(model_type, r.StringOr("model_type", ""));
  if (r.Has("architectures")) {
    const json& archs = object.at("architectures");
    if (!archs.is_array() || archs.empty() || !archs[0].is_string()) {
      return r.Error("architectures", "must be a non-empty list of strings");
    }
    c.architecture = archs[0].get<std::string>();
  }
  const ArchitectureEntry* entry = nullptr;
  for (const ArchitectureEntry& candidate : kArchitectures) {
    if (c.architecture.empty() ? candidate.model_type == model_type
                               : (candidate.causal_lm == c.architecture ||
                                  candidate.sequence_classification == c.architecture)) {
      entry = &candidate;
    }
  }
  if (entry == nullptr) {
    std::vector<std::string> known;
    for (const ArchitectureEntry& e : kArchitectures) {
      known.emplace_back(e.causal_lm);
      known.emplace_back(e.sequence_classification);
    }
    if (c.architecture.empty()) {
      return r.Error("model_type", absl::StrCat("has unsupported value \"", model_type,
                                                "\" and there is no \"architectures\" field"));
    }
    return r.Error("architectures",
                   absl::StrCat("names unknown architecture \"", c.architecture,
                                "\" (supported: ", absl::StrJoin(known, ", "), ")"));
  }
  if (!model_type.empty() && model_type != entry->model_type) {
    return r.Error("model_type",
                   absl::StrCat("is \"", model_type, "\" but architecture ", c.architecture,
                                " needs \"", std::string(entry->model_type), "\""));
  }
  c.model_type = std::string(entry->model_type);
  c.family = entry->family;
  if (c.architecture.empty()) c.architecture = std::string(entry->causal_lm);
  c.head = c.architecture == entry->sequence_classification ? HeadKind::kSequenceClassification
                                                            : HeadKind::kCausalLm;

  absl::Status status =
      c.family == ModelFamily::kGpt2 ? ParseGpt2(r, c) : ParseLlamaFamily(r, object, source, c);
  if (!status.ok()) return status;

  RLHF_ASSIGN_OR_RETURN(c.initializer_range, r.PositiveDoubleOr("initializer_range", 0.02));
  RLHF_ASSIGN_OR_RETURN(c.pad_token_id, r.OptionalInt("pad_token_id"));
  RLHF_ASSIGN_OR_RETURN(c.bos_token_id, r.OptionalInt("bos_token_id"));
  RLHF_ASSIGN_OR_RETURN(c.eos_token_ids, r.IntList("eos_token_id"));
  // PretrainedConfig stores num_labels as the size of id2label.
  if (r.Has("id2label")) {
    const json& labels = object.at("id2label");
    if (!labels.is_object() || labels.empty()) {
      return r.Error("id2label", "must be a non-empty object");
    }
    c.num_labels = static_cast<int64_t>(labels.size());
  } else if (r.Has("num_labels")) {
    RLHF_ASSIGN_OR_RETURN(c.num_labels, r.PositiveInt("num_labels"));
  }
  return c;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string()));
  std::stringstream text;
  text << in.rdbuf();
  json object = json::parse(text.str(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (object.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON in ", path.string()));
  }
  return ParseModelConfig(object, path.string());
}

absl::StatusOr<std::vector<int64_t>> LoadGenerationEosIds(const std::filesystem::path& dir) {
  std::filesystem::path path = dir / "generation_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::vector<int64_t>();
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  json object = json::parse(text.str(), nullptr, false);
  if (object.is_discarded() || !object.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON in ", path.string()));
  }
  return FieldReader(object, path.string()).IntList("eos_token_id");
}

#undef RLHF_ASSIGN_OR_RETURN

}  // namespace rlhf::model
