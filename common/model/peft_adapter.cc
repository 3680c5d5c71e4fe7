#include "common/model/peft_adapter.h"

#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"
#include "common/io/safetensors_file.h"
#include "common/io/safetensors_writer.h"

namespace rlhf::model {
namespace {

namespace fs = std::filesystem;
constexpr char kConfigFile[] = "adapter_config.json";
constexpr char kWeightsFile[] = "adapter_model.safetensors";

std::string Key(const std::string& module, const char* matrix) {
  return absl::StrCat("base_model.model.", module, ".", matrix, ".weight");
}

absl::Status ConfigError(const fs::path& file, const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(file.string(), ": ", field, ": ", why));
}

// The adapter_config.json fields this runtime understands, checked.
absl::StatusOr<LoraOptions> ParseConfig(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", file.string()));
  const nlohmann::json config = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return ConfigError(file, "(file)", "not a JSON object");
  auto is_off = [&](const char* key) {
    auto it = config.find(key);
    return it == config.end() || it->is_null() || (it->is_boolean() && !it->get<bool>()) ||
           ((it->is_array() || it->is_object()) && it->empty());
  };
  if (config.value("peft_type", "") != "LORA") {
    return ConfigError(file, "peft_type", "only LORA adapters are supported");
  }
  for (const char* key : {"use_dora", "rank_pattern", "alpha_pattern", "modules_to_save",
                          "layers_to_transform", "layer_replication", "use_qalora", "lora_bias",
                          "exclude_modules", "target_parameters", "trainable_token_indices"}) {
    if (!is_off(key)) return ConfigError(file, key, "not supported here");
  }
  if (config.value("bias", "none") != "none") {
    return ConfigError(file, "bias", "only \"none\" is supported (no trained biases)");
  }
  LoraOptions options;
  auto number = [&](const char* key, double* out) -> absl::Status {
    auto it = config.find(key);
    if (it == config.end() || !it->is_number())
      return ConfigError(file, key, "missing or not a number");
    *out = it->get<double>();
    return absl::OkStatus();
  };
  double rank = 0;
  if (auto s = number("r", &rank); !s.ok()) return s;
  if (auto s = number("lora_alpha", &options.alpha); !s.ok()) return s;
  options.rank = static_cast<int64_t>(rank);
  if (static_cast<double>(options.rank) != rank || options.rank < 1) {
    return ConfigError(file, "r", "must be a positive integer");
  }
  if (config.contains("lora_dropout") && config["lora_dropout"].is_number()) {
    options.dropout = config["lora_dropout"].get<double>();
  }
  options.use_rslora = config.value("use_rslora", false);
  auto targets = config.find("target_modules");
  if (targets == config.end() || !targets->is_array() || targets->empty()) {
    return ConfigError(file, "target_modules",
                       "must be a list of module names (a regex string is not supported)");
  }
  for (const auto& target : *targets) {
    if (!target.is_string()) return ConfigError(file, "target_modules", "names must be strings");
    options.target_modules.push_back(target.get<std::string>());
  }
  return options;
}

}  // namespace

absl::Status SavePeftAdapter(torch::nn::Module& model, const fs::path& dir,
                             const LoraOptions& options, const std::string& base_model) {
  const auto layers = LoraLayers(model);
  if (layers.empty()) return absl::FailedPreconditionError("the model has no LoRA adapters");
  std::vector<torch::Tensor> keep;  // contiguous float32 copies the views point into
  std::vector<io::TensorView> views;
  bool fan_in_fan_out = false;
  for (const auto& [name, layer] : layers) {
    fan_in_fan_out |= layer->fan_in_fan_out();
    for (auto [matrix, tensor] :
         {std::pair{"lora_A", layer->lora_a()}, std::pair{"lora_B", layer->lora_b()}}) {
      keep.push_back(tensor.detach().to(torch::kCPU, torch::kFloat32).contiguous());
      const torch::Tensor& t = keep.back();
      views.push_back({Key(name, matrix), io::DType::kF32, t.sizes().vec(),
                       static_cast<const uint8_t*>(t.data_ptr()), static_cast<size_t>(t.nbytes())});
    }
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  if (auto s = io::WriteSafetensors(dir / kWeightsFile, views, {{"format", "pt"}}); !s.ok())
    return s;
  const nlohmann::json config = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"base_model_name_or_path", base_model},
      {"r", options.rank},
      {"lora_alpha", options.alpha},
      {"lora_dropout", options.dropout},
      {"target_modules", options.target_modules},
      {"use_rslora", options.use_rslora},
      {"fan_in_fan_out", fan_in_fan_out},
      {"bias", "none"},
      {"use_dora", false},
      {"modules_to_save", nullptr},
      {"init_lora_weights", true},
      {"inference_mode", true},
  };
  return io::WriteFileAtomically(dir / kConfigFile, config.dump(2) + "\n");
}

absl::StatusOr<LoraOptions> LoadPeftAdapter(torch::nn::Module& model, const fs::path& dir) {
  absl::StatusOr<LoraOptions> options;
  try {  // a field of an unexpected JSON type
    options = ParseConfig(dir / kConfigFile);
  } catch (const nlohmann::json::exception& error) {
    return absl::InvalidArgumentError(
        absl::StrCat((dir / kConfigFile).string(), ": ", error.what()));
  }
  if (!options.ok()) return options.status();
  auto file = io::SafetensorsFile::Open(dir / kWeightsFile);
  if (!file.ok()) return file.status();
  auto attached = AttachLora(model, *options);
  if (!attached.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat((dir / kConfigFile).string(), ": ", attached.status().message()));
  }
  const std::string source = (dir / kWeightsFile).string();
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (const auto& [name, layer] : LoraLayers(model)) {
    for (auto [matrix, tensor] :
         {std::pair{"lora_A", &layer->lora_a()}, std::pair{"lora_B", &layer->lora_b()}}) {
      const std::string key = Key(name, matrix);
      const io::TensorView* view = (*file)->Find(key);
      if (view == nullptr)
        return absl::InvalidArgumentError(absl::StrCat(source, ": missing ", key));
      if (view->shape != tensor->sizes().vec()) {
        return absl::InvalidArgumentError(absl::StrCat(source, ": ", key, " has the wrong shape"));
      }
      auto dtype = view->dtype == io::DType::kF32    ? std::optional(torch::kFloat32)
                   : view->dtype == io::DType::kBF16 ? std::optional(torch::kBFloat16)
                   : view->dtype == io::DType::kF16  ? std::optional(torch::kFloat16)
                                                     : std::nullopt;
      if (!dtype)
        return absl::InvalidArgumentError(absl::StrCat(source, ": ", key, ": unsupported dtype"));
      torch::Tensor blob = torch::from_blob(const_cast<uint8_t*>(view->data), view->shape,
                                            torch::TensorOptions().dtype(*dtype));
      tensor->copy_(blob);
      used.insert(key);
    }
  }
  for (const io::TensorView& view : (*file)->tensors()) {
    if (!used.contains(view.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": ", view.name, " belongs to no adapted layer of this model"));
    }
  }
  return options;
}

}  // namespace rlhf::model
