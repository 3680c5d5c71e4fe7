#include "common/model/loader.h"

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/io/safetensors.h"
#include "common/model/device_flags.h"
#include "common/model/weights.h"
#include "common/status/torch_status.h"

namespace rlhf::model {
namespace {

absl::Status CheckOptions(const LoadOptions& options) {
  if (options.dtype != torch::kFloat32 && options.dtype != torch::kBFloat16 &&
      options.dtype != torch::kFloat16) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported load dtype ",
                                                   c10::toString(options.dtype),
                                                   " (supported: float32, bfloat16, float16)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> ReadOptionalJson(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return nlohmann::json();
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("malformed JSON in ", path.string()));
  }
  return json;
}

// Everything a load needs before the model exists.
struct Checkpoint {
  ModelConfig config;
  nlohmann::json generation_config;
  std::unique_ptr<io::SafetensorsCheckpoint> weights;
};

absl::StatusOr<Checkpoint> OpenCheckpoint(const std::filesystem::path& dir) {
  Checkpoint checkpoint;
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir / "config.json");
  if (!config.ok()) return config.status();
  checkpoint.config = *std::move(config);
  absl::StatusOr<nlohmann::json> generation = ReadOptionalJson(dir / "generation_config.json");
  if (!generation.ok()) return generation.status();
  checkpoint.generation_config = *std::move(generation);
  absl::StatusOr<std::unique_ptr<io::SafetensorsCheckpoint>> weights =
      io::SafetensorsCheckpoint::Open(dir);
  if (!weights.ok()) return weights.status();
  checkpoint.weights = *std::move(weights);
  return checkpoint;
}

// Loads weights into `model` (already moved to the target dtype and device) and records
// the report as warnings.
absl::Status LoadInto(DecoderModel& model, const Checkpoint& checkpoint,
                      const std::filesystem::path& dir, const WeightLoadRules& rules) {
  absl::StatusOr<WeightLoadReport> report =
      LoadWeights(model, *checkpoint.weights, dir.string(), rules);
  if (!report.ok()) return report.status();
  constexpr size_t kMaxListed = 8;  // keep the line readable for big checkpoints
  auto listed = [&](const std::vector<std::string>& names) {
    std::vector<std::string> head(names.begin(),
                                  names.begin() + std::min(names.size(), kMaxListed));
    std::string text = absl::StrJoin(head, ", ");
    if (names.size() > kMaxListed) absl::StrAppend(&text, ", ... (", names.size(), " in all)");
    return text;
  };
  if (!report->unexpected.empty()) {
    model.add_load_warning(absl::StrCat("ignored ", report->unexpected.size(),
                                        " unexpected tensors in ", dir.string(), ": ",
                                        listed(report->unexpected)));
  }
  if (!report->initialized.empty()) {
    model.add_load_warning(absl::StrCat("newly initialized (not in ", dir.string(),
                                        "): ", listed(report->initialized)));
  }
  for (const std::string& warning : model.load_warnings()) {
    std::cerr << "rlhf::model warning: " << warning << "\n";
  }
  model.set_generation_config(checkpoint.generation_config);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<CausalLm>> LoadCausalLm(const std::filesystem::path& dir,
                                                       const LoadOptions& options) {
  PinComputeThreads();
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  absl::StatusOr<Checkpoint> checkpoint = OpenCheckpoint(dir);
  if (!checkpoint.ok()) return checkpoint.status();
  const ModelConfig& config = checkpoint->config;
  if (config.head != HeadKind::kCausalLm) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir.string(), " holds a sequence classifier (", config.architecture,
                     "), not a causal LM: load it with LoadSequenceClassifier"));
  }
  return CatchTorchErrors(
      absl::StrCat("loading ", dir.string()), [&]() -> absl::StatusOr<std::shared_ptr<CausalLm>> {
        auto model = std::make_shared<CausalLm>(config, /*init_weights=*/false);
        if (options.value_head) model->AddValueHead(options.init_seed);
        model->to(options.device, options.dtype);
        WeightLoadRules rules;
        rules.backbone_prefix = std::string(config.BackbonePrefix());
        rules.may_be_missing = [](const std::string& name) { return name.starts_with("v_head."); };
        // A tied model's lm_head is the embedding; transformers ties it the same way.
        if (config.tie_word_embeddings) rules.silently_ignored.push_back("lm_head.weight");
        if (absl::Status s = LoadInto(*model, *checkpoint, dir, rules); !s.ok()) return s;
        return model;
      });
}

absl::StatusOr<std::shared_ptr<SequenceClassifier>> LoadSequenceClassifier(
    const std::filesystem::path& dir, const LoadOptions& options) {
  PinComputeThreads();
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  absl::StatusOr<Checkpoint> checkpoint = OpenCheckpoint(dir);
  if (!checkpoint.ok()) return checkpoint.status();
  ModelConfig config = checkpoint->config;
  const bool from_causal = config.head == HeadKind::kCausalLm;
  if (config.num_labels == 0) {
    const io::TensorView* score = checkpoint->weights->Find("score.weight");
    config.num_labels = score != nullptr && score->shape.size() == 2 ? score->shape[0] : 1;
  }
  config.head = HeadKind::kSequenceClassification;
  config.architecture = config.ArchitectureFor(HeadKind::kSequenceClassification);
  return CatchTorchErrors(
      absl::StrCat("loading ", dir.string()),
      [&]() -> absl::StatusOr<std::shared_ptr<SequenceClassifier>> {
        auto model = std::make_shared<SequenceClassifier>(config, /*init_weights=*/false);
        if (from_causal) {
          // LlamaPreTrainedModel._init_weights: Linear weight ~ N(0, initializer_range).
          torch::NoGradGuard no_grad;
          auto generator = at::make_generator<at::CPUGeneratorImpl>(options.init_seed);
          torch::Tensor weight = model->named_parameters()["score.weight"];
          weight.copy_(at::normal(0.0, config.initializer_range, weight.sizes(), generator));
        }
        model->to(options.device, options.dtype);
        WeightLoadRules rules;
        rules.backbone_prefix = std::string(config.BackbonePrefix());
        if (from_causal) {
          rules.may_be_missing = [](const std::string& name) { return name == "score.weight"; };
          rules.silently_ignored.push_back("lm_head.weight");
        }
        if (absl::Status s = LoadInto(*model, *checkpoint, dir, rules); !s.ok()) return s;
        return model;
      });
}

}  // namespace rlhf::model
