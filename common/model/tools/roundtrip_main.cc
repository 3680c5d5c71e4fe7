// rlhf_model_roundtrip IN_DIR OUT_DIR [--dtype=float32|bfloat16] [--max-shard-bytes=N]
//                      [--value-head]
//
// Loads a Hugging Face checkpoint directory with rlhf::model and writes it back with
// SavePretrained (tokenizer files copied from IN_DIR when present). Used by
// tests/golden/make_model_goldens.py to check that transformers loads what we save.

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <string_view>

#include "common/model/config.h"
#include "common/model/loader.h"
#include "common/model/save.h"

namespace {

int Fail(const absl::Status& status) {
  std::cerr << "rlhf_model_roundtrip: " << status << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace rlhf::model;
  if (argc < 3) {
    std::cerr << "usage: rlhf_model_roundtrip IN_DIR OUT_DIR [--dtype=float32|bfloat16] "
                 "[--max-shard-bytes=N] [--value-head]\n";
    return 2;
  }
  const std::filesystem::path in = argv[1];
  const std::filesystem::path out = argv[2];
  LoadOptions load;
  SaveOptions save;
  for (int i = 3; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--dtype=bfloat16") {
      load.dtype = torch::kBFloat16;
    } else if (arg == "--dtype=float32") {
      load.dtype = torch::kFloat32;
    } else if (arg == "--value-head") {
      load.value_head = true;  // TRL's v_head: kept if present, else initialised
    } else if (arg.starts_with("--max-shard-bytes=")) {
      save.max_shard_bytes = std::strtoull(argv[i] + arg.find('=') + 1, nullptr, 10);
    } else {
      std::cerr << "rlhf_model_roundtrip: unknown flag " << arg << "\n";
      return 2;
    }
  }
  std::error_code ec;
  if (std::filesystem::exists(in / "tokenizer.json", ec)) save.tokenizer_dir = in;

  absl::StatusOr<ModelConfig> config = LoadModelConfig(in / "config.json");
  if (!config.ok()) return Fail(config.status());
  absl::Status status;
  if (config->head == HeadKind::kSequenceClassification) {
    auto model = LoadSequenceClassifier(in, load);
    if (!model.ok()) return Fail(model.status());
    status = SavePretrained(**model, out, save);
  } else {
    auto model = LoadCausalLm(in, load);
    if (!model.ok()) return Fail(model.status());
    status = SavePretrained(**model, out, save);
  }
  if (!status.ok()) return Fail(status);
  std::cout << "saved " << out.string() << "\n";
  return 0;
}
