// PolicyTrainer checkpoints: Hugging Face weights (model::SavePretrained) plus AdamW state in
// a format we write (no pickle): optimizer.safetensors holds, per parameter name,
// <name>.exp_avg, <name>.exp_avg_sq (the parameter's dtype and shape) and <name>.step (I64
// scalar); trainer_state.json holds the format tag, policy_version and optimizer options.

#include <fcntl.h>  // AT_FDCWD
#include <stdio.h>  // renameat2 (glibc >= 2.28)
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"
#include "common/io/safetensors_file.h"
#include "common/io/safetensors_writer.h"
#include "common/model/loader.h"
#include "common/model/save.h"
#include "common/model/weights.h"
#include "common/status/torch_status.h"
#include "common/train/policy_trainer.h"

namespace rlhf::train {
namespace {

namespace fs = std::filesystem;
constexpr char kOptimizerFile[] = "optimizer.safetensors";
constexpr char kStateFile[] = "trainer_state.json";
constexpr char kFormat[] = "rlhf.adamw.v1";

fs::path StagingPath(const fs::path& dir) {
  static std::atomic<int64_t> counter{0};
  return dir.parent_path() /
         absl::StrCat(".", dir.filename().string(), ".staging-", getpid(), "-", counter++);
}

// A directory is replaced only when it is empty or one this code wrote (a checkpoint, or
// an export), never a directory of other data that a caller happened to name.
absl::Status CheckReplaceable(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return absl::OkStatus();
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(dir.string(), " exists and is not a directory"));
  }
  if (fs::is_empty(dir, ec) || fs::exists(dir / kStateFile, ec) ||
      (fs::exists(dir / "config.json", ec) && fs::exists(dir / "model.safetensors", ec))) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      dir.string(), " exists and is neither a checkpoint nor a model export: not replaced"));
}

// Puts `staging` at `dir`: one rename when `dir` does not exist, else an atomic exchange
// (renameat2 RENAME_EXCHANGE) and removal of the old contents.
absl::Status SwapIntoPlace(const fs::path& staging, const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::rename(staging, dir, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("rename to ", dir.string(), ": ", ec.message()));
    return absl::OkStatus();
  }
  if (auto s = CheckReplaceable(dir); !s.ok()) return s;
  if (renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    return absl::InternalError(absl::StrCat("exchanging ", staging.string(), " with ", dir.string(),
                                            ": ", strerror(errno)));
  }
  fs::remove_all(staging, ec);  // now the old checkpoint
  return absl::OkStatus();
}

bool HasTokenizerFiles(const fs::path& dir) {
  std::error_code ec;
  for (const char* name :
       {"tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json"}) {
    if (fs::exists(dir / name, ec)) return true;
  }
  return false;
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json json = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a JSON object"));
  }
  return json;
}

}  // namespace

absl::Status PolicyTrainer::ExportPretrained(const fs::path& dir,
                                             std::optional<torch::ScalarType> dtype) {
  if (dir.empty()) return absl::InvalidArgumentError("export directory is empty");
  return CatchTorchErrors("ExportPretrained", [&]() -> absl::Status {
    // Written beside `dir` and swapped in whole: an export that fails or dies half-way
    // leaves the previous export as it was (and no files of it carried over).
    const fs::path target = fs::absolute(dir);
    if (auto s = CheckReplaceable(target); !s.ok()) return s;
    const fs::path staging = StagingPath(target);
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    fs::remove_all(staging, ec);
    model::SaveOptions save_options;
    if (options_.tokenizer_dir && HasTokenizerFiles(*options_.tokenizer_dir)) {
      save_options.tokenizer_dir = options_.tokenizer_dir;
    }
    save_options.include_value_head = false;
    save_options.dtype = dtype;
    if (auto s = model_ ? model::SavePretrained(*model_, staging, save_options)
                        : model::SavePretrained(*classifier_, staging, save_options);
        !s.ok()) {
      fs::remove_all(staging, ec);
      return s;
    }
    return SwapIntoPlace(staging, target);
  });
}

absl::Status PolicyTrainer::SaveCheckpoint(const fs::path& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("checkpoint directory is empty");
  return CatchTorchErrors("SaveCheckpoint", [&]() -> absl::Status {
    const fs::path target = fs::absolute(dir);
    if (auto s = CheckReplaceable(target); !s.ok()) return s;
    const fs::path staging = StagingPath(target);
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    fs::remove_all(staging, ec);
    model::SaveOptions save_options;
    if (options_.tokenizer_dir && HasTokenizerFiles(*options_.tokenizer_dir)) {
      save_options.tokenizer_dir = options_.tokenizer_dir;  // else: a model without tokenizer
    }
    if (auto s = model_ ? model::SavePretrained(*model_, staging, save_options)
                        : model::SavePretrained(*classifier_, staging, save_options);
        !s.ok()) {
      return s;
    }

    std::vector<torch::Tensor> storage;
    std::vector<io::TensorView> views;
    auto add = [&](const std::string& name, torch::Tensor t) -> absl::Status {
      t = t.detach().to(torch::kCPU).contiguous();
      io::DType dtype = io::DType::kI64;
      if (t.scalar_type() != torch::kInt64) {
        auto d = model::ToIoDType(t.scalar_type());
        if (!d.ok()) return d.status();
        dtype = *d;
      }
      storage.push_back(t);
      views.push_back({name, dtype, t.sizes().vec(), static_cast<const uint8_t*>(t.data_ptr()),
                       static_cast<size_t>(t.nbytes())});
      return absl::OkStatus();
    };
    for (const auto& [name, param] : parameters_) {
      auto it = optimizer_->state().find(param.unsafeGetTensorImpl());
      if (it == optimizer_->state().end()) continue;
      auto& state = static_cast<torch::optim::AdamWParamState&>(*it->second);
      for (absl::Status s :
           {add(name + ".exp_avg", state.exp_avg()), add(name + ".exp_avg_sq", state.exp_avg_sq()),
            add(name + ".step", torch::tensor(state.step(), torch::kInt64))}) {
        if (!s.ok()) return s;
      }
    }
    if (auto s = io::WriteSafetensors(staging / kOptimizerFile, views, {{"format", kFormat}});
        !s.ok()) {
      return s;
    }
    const OptimizerOptions& o = options_.optimizer;
    nlohmann::json state = {{"format", kFormat},
                            {"policy_version", policy_version_},
                            {"value_head", model_ != nullptr && model_->has_value_head()},
                            {"reward_model", classifier_ != nullptr},
                            {"optimizer",
                             {{"type", "adamw"},
                              {"learning_rate", o.learning_rate},
                              {"betas", {o.beta1, o.beta2}},
                              {"eps", o.eps},
                              {"weight_decay", o.weight_decay}}}};
    if (auto s = io::WriteFileAtomically(staging / kStateFile, state.dump(2) + "\n"); !s.ok()) {
      return s;
    }
    auto swapped = SwapIntoPlace(staging, target);
    if (!swapped.ok()) fs::remove_all(staging, ec);
    return swapped;
  });
}

absl::Status PolicyTrainer::LoadCheckpoint(const fs::path& dir) {
  // A plain Hugging Face directory (no trainer_state.json) resets the trainer to those
  // weights: fresh optimizer state, policy_version 0, a fresh value head if it has none.
  std::error_code error;
  const bool initial =
      !fs::exists(dir / kStateFile, error) && fs::exists(dir / "config.json", error);
  int64_t policy_version = 0;
  if (!initial) {
    auto state_json = ReadJsonFile(dir / kStateFile);
    if (!state_json.ok()) return state_json.status();
    const nlohmann::json& state = *state_json;
    if (state.value("format", "") != kFormat) {
      return absl::InvalidArgumentError(
          absl::StrCat((dir / kStateFile).string(), ": \"format\" is not \"", kFormat, "\""));
    }
    auto version = state.find("policy_version");
    if (version == state.end() || !version->is_number_integer() || version->get<int64_t>() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          (dir / kStateFile).string(), ": \"policy_version\" must be an integer >= 0"));
    }
    policy_version = version->get<int64_t>();
  }
  return CatchTorchErrors("LoadCheckpoint", [&]() -> absl::Status {
    model::LoadOptions load;
    const bool value_head = model_ != nullptr && model_->has_value_head();
    load.value_head = value_head;
    load.dtype = model_ ? model_->dtype() : classifier_->dtype();
    load.device = model_ ? model_->device() : classifier_->device();
    std::shared_ptr<model::DecoderModel> loaded;
    if (model_) {
      auto lm = model::LoadCausalLm(dir, load);
      if (!lm.ok()) return lm.status();
      loaded = *lm;
    } else {
      auto classifier = model::LoadSequenceClassifier(dir, load);
      if (!classifier.ok()) return classifier.status();
      loaded = *classifier;
    }
    auto loaded_params = loaded->named_parameters(/*recurse=*/true);
    for (const auto& [name, param] : parameters_) {
      const torch::Tensor* source = loaded_params.find(name);
      if (source == nullptr || !source->sizes().equals(param.sizes())) {
        return absl::InvalidArgumentError(
            absl::StrCat(dir.string(), ": parameter ", name,
                         " is missing or has another shape than the policy's"));
      }
    }
    for (const std::string& warning : loaded->load_warnings()) {
      if (!initial && warning.find("v_head") != std::string::npos && value_head) {
        return absl::InvalidArgumentError(
            absl::StrCat(dir.string(), ": the checkpoint has no value head: ", warning));
      }
    }
    // Build every new state first; only then touch the trainer.
    std::vector<std::pair<void*, std::unique_ptr<torch::optim::AdamWParamState>>> states;
    absl::StatusOr<std::unique_ptr<io::SafetensorsFile>> file;
    if (!initial) {
      file = io::SafetensorsFile::Open(dir / kOptimizerFile);
      if (!file.ok()) return file.status();
    }
    for (const auto& [name, param] : initial ? decltype(parameters_){} : parameters_) {
      const io::TensorView* exp_avg = (*file)->Find(name + ".exp_avg");
      const io::TensorView* exp_avg_sq = (*file)->Find(name + ".exp_avg_sq");
      const io::TensorView* step = (*file)->Find(name + ".step");
      if (exp_avg == nullptr && exp_avg_sq == nullptr && step == nullptr) continue;  // no step yet
      auto dtype = model::ToIoDType(param.scalar_type());
      if (!dtype.ok()) return dtype.status();
      for (const io::TensorView* view : {exp_avg, exp_avg_sq}) {
        if (view == nullptr || view->dtype != *dtype || view->shape != param.sizes().vec()) {
          return absl::InvalidArgumentError(absl::StrCat(
              (dir / kOptimizerFile).string(), ": ", name,
              ".exp_avg/.exp_avg_sq missing or not of the parameter's dtype and shape"));
        }
      }
      if (step == nullptr || step->dtype != io::DType::kI64 || step->nbytes != sizeof(int64_t)) {
        return absl::InvalidArgumentError(absl::StrCat((dir / kOptimizerFile).string(), ": ", name,
                                                       ".step missing or not an I64 scalar"));
      }
      auto copy = [&](const io::TensorView* view) {
        return torch::from_blob(const_cast<uint8_t*>(view->data), view->shape, param.scalar_type())
            .clone()
            .to(param.device());
      };
      int64_t steps = 0;
      std::memcpy(&steps, step->data, sizeof(steps));
      auto adam = std::make_unique<torch::optim::AdamWParamState>();
      adam->step(steps);
      adam->exp_avg(copy(exp_avg));
      adam->exp_avg_sq(copy(exp_avg_sq));
      states.emplace_back(param.unsafeGetTensorImpl(), std::move(adam));
    }
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, param] : parameters_) param.copy_(*loaded_params.find(name));
    }
    optimizer_->state().clear();
    for (auto& [key, adam] : states) optimizer_->state()[key] = std::move(adam);
    optimizer_->zero_grad();
    policy_version_ = policy_version;
    return absl::OkStatus();
  });
}

}  // namespace rlhf::train
