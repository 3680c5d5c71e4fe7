#include "common/model/save.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2

#include <array>
#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/io/atomic_file.h"
#include "common/io/safetensors.h"
#include "common/model/weights.h"

namespace rlhf::model {
namespace {

namespace fs = std::filesystem;

constexpr std::array<const char*, 8> kTokenizerFiles = {
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
    "merges.txt",     "tokenizer.model",       "added_tokens.json",       "chat_template.jinja"};

std::string DTypeConfigName(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kBFloat16:
      return "bfloat16";
    case torch::kFloat16:
      return "float16";
    default:
      return "float32";
  }
}

// config.json as transformers writes it: the loaded object with updated fields, sorted
// keys, two-space indent, trailing newline (PretrainedConfig.to_json_string).
std::string ConfigJson(const ModelConfig& config, torch::ScalarType dtype) {
  nlohmann::json json = config.raw;
  json["architectures"] = nlohmann::json::array({config.architecture});
  json["model_type"] = config.model_type;
  // transformers 4.56+ writes "dtype"; older files say "torch_dtype".
  json["dtype"] = DTypeConfigName(dtype);
  if (json.contains("torch_dtype")) json["torch_dtype"] = DTypeConfigName(dtype);
  if (config.head == HeadKind::kSequenceClassification) {
    const int64_t labels = config.num_labels;
    if (!json.contains("id2label") || !json["id2label"].is_object() ||
        static_cast<int64_t>(json["id2label"].size()) != labels) {
      nlohmann::json id2label = nlohmann::json::object();
      nlohmann::json label2id = nlohmann::json::object();
      for (int64_t i = 0; i < labels; ++i) {
        id2label[std::to_string(i)] = absl::StrCat("LABEL_", i);
        label2id[absl::StrCat("LABEL_", i)] = i;
      }
      json["id2label"] = id2label;
      json["label2id"] = label2id;
    }
    json.erase("num_labels");
  }
  return json.dump(2) + "\n";
}

absl::Status CopyTokenizerFiles(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::is_directory(from, ec)) {
    return absl::NotFoundError(absl::StrCat("tokenizer directory ", from.string(), " not found"));
  }
  bool any = false;
  for (const char* name : kTokenizerFiles) {
    if (!fs::exists(from / name, ec)) continue;
    fs::copy_file(from / name, to / name, fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("copying ", (from / name).string(), ": ", ec.message()));
    }
    any = true;
  }
  if (!any) {
    return absl::NotFoundError(absl::StrCat("no tokenizer files in ", from.string()));
  }
  return absl::OkStatus();
}

// Makes `staging` visible as `dir` in one step: renameat2(RENAME_EXCHANGE) swaps an
// existing directory out atomically; a new `dir` is a plain rename.
absl::Status PublishDirectory(const fs::path& staging, const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    fs::rename(staging, dir, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("renaming into ", dir.string(), ": ", ec.message()));
    return absl::OkStatus();
  }
  if (!fs::is_directory(dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir.string(), " exists and is not a directory"));
  }
  if (renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    return absl::InternalError(
        absl::StrCat("replacing ", dir.string(), ": ", std::strerror(errno)));
  }
  fs::remove_all(staging, ec);  // now holds the old checkpoint
  return absl::OkStatus();
}

// Files of an earlier save that this save rewrites or supersedes (weights in either layout).
bool IsCheckpointFile(const std::string& name) {
  if (name == "config.json" || name == "generation_config.json") return true;
  for (const char* tokenizer_file : kTokenizerFiles) {
    if (name == tokenizer_file) return true;
  }
  return name.starts_with("model") &&
         (name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json"));
}

// Anything else already in `dir` (say a training state written beside the weights) is
// hard-linked (or copied) into the staging directory, so replacing `dir` loses nothing.
absl::Status CarryOverOtherFiles(const fs::path& dir, const fs::path& staging) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return absl::OkStatus();
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (IsCheckpointFile(name) || fs::exists(staging / name, ec)) continue;
    fs::copy(entry.path(), staging / name,
             fs::copy_options::recursive | fs::copy_options::create_hard_links, ec);
    if (ec) {
      ec.clear();
      fs::copy(entry.path(), staging / name, fs::copy_options::recursive, ec);
    }
    if (ec) {
      return absl::InternalError(
          absl::StrCat("keeping ", entry.path().string(), ": ", ec.message()));
    }
  }
  if (ec) return absl::InternalError(absl::StrCat("listing ", dir.string(), ": ", ec.message()));
  return absl::OkStatus();
}

absl::Status SaveModel(const DecoderModel& model, const ModelConfig& config,
                       const fs::path& requested_dir, const SaveOptions& options) {
  // "out/" names the directory "out".
  const fs::path dir = requested_dir.has_filename() ? requested_dir : requested_dir.parent_path();
  const torch::ScalarType dtype = options.dtype.value_or(model.dtype());
  absl::StatusOr<SavedTensors> tensors = CollectWeights(model, dtype);
  if (!tensors.ok()) return tensors.status();
  if (!options.include_value_head) {
    std::erase_if(tensors->views,
                  [](const io::TensorView& view) { return view.name.rfind("v_head.", 0) == 0; });
  }

  std::error_code ec;
  const fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  fs::create_directories(parent, ec);
  std::random_device random;
  const fs::path staging =
      parent / absl::StrCat(".", dir.filename().string(), ".tmp-", random(), random());
  fs::create_directory(staging, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("creating ", staging.string(), ": ", ec.message()));
  }
  auto fail = [&](absl::Status status) {
    fs::remove_all(staging, ec);
    return status;
  };
  // modeling_utils.save_pretrained stores {"format": "pt"}; from_pretrained checks it.
  absl::Status status = io::WriteShardedSafetensors(staging, tensors->views, {{"format", "pt"}},
                                                    options.max_shard_bytes);
  if (!status.ok()) return fail(status);
  status = io::WriteFileAtomically(staging / "config.json", ConfigJson(config, dtype));
  if (!status.ok()) return fail(status);
  if (!model.generation_config().is_null()) {
    status = io::WriteFileAtomically(staging / "generation_config.json",
                                     model.generation_config().dump(2) + "\n");
    if (!status.ok()) return fail(status);
  }
  if (options.tokenizer_dir.has_value()) {
    status = CopyTokenizerFiles(*options.tokenizer_dir, staging);
    if (!status.ok()) return fail(status);
  }
  status = CarryOverOtherFiles(dir, staging);
  if (!status.ok()) return fail(status);
  status = PublishDirectory(staging, dir);
  if (!status.ok()) return fail(status);
  return absl::OkStatus();
}

}  // namespace

absl::Status SavePretrained(const CausalLm& model, const fs::path& dir,
                            const SaveOptions& options) {
  return SaveModel(model, model.config(), dir, options);
}

absl::Status SavePretrained(const SequenceClassifier& model, const fs::path& dir,
                            const SaveOptions& options) {
  return SaveModel(model, model.config(), dir, options);
}

}  // namespace rlhf::model
