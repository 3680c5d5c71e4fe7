#include "common/model/device_flags.h"

#include <ATen/Parallel.h>

#include <fstream>
#include <mutex>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace rlhf::model {

absl::StatusOr<torch::Device> ParseDevice(const std::string& text, int64_t local_rank) {
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text == "cuda") {
    return torch::Device(torch::kCUDA,
                         static_cast<c10::DeviceIndex>(std::max<int64_t>(0, local_rank)));
  }
  int64_t index = -1;
  if (text.rfind("cuda:", 0) == 0 && absl::SimpleAtoi(text.substr(5), &index) && index >= 0 &&
      index < 256) {
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--device: want cpu, cuda or cuda:N, got '", text, "'"));
}

absl::Status CheckDeviceAvailable(const torch::Device& device) {
  if (device.is_cpu()) return absl::OkStatus();
  // LibTorch answers 0 both without a GPU and in a build without its CUDA libraries (they
  // register the CUDA hooks): one message names both causes.
  const int64_t visible = static_cast<int64_t>(torch::cuda::device_count());
  if (visible == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--device ", device.str(),
                     ": CUDA is not available here (no GPU visible, or a build without "
                     "-DRLHF_WITH_CUDA=ON)"));
  }
  if (device.index() >= visible) {
    return absl::InvalidArgumentError(
        absl::StrCat("--device ", device.str(), ": only ", visible, " CUDA device(s) visible"));
  }
  return absl::OkStatus();
}

absl::StatusOr<torch::Dtype> ParseDtype(const std::string& text) {
  if (text == "float32" || text == "fp32") return torch::kFloat32;
  if (text == "bfloat16" || text == "bf16") return torch::kBFloat16;
  if (text == "float16" || text == "fp16") return torch::kFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("--dtype: want float32, bfloat16 or float16, got '", text, "'"));
}

void PinComputeThreads() {
  static std::once_flag once;
  std::call_once(once, [] { at::set_num_threads(at::get_num_threads()); });
}

std::string DtypeName(torch::Dtype dtype) {
  if (dtype == torch::kBFloat16) return "bfloat16";
  if (dtype == torch::kFloat16) return "float16";
  return "float32";
}

torch::Dtype CheckpointDtype(const std::filesystem::path& model_dir) {
  std::ifstream file(model_dir / "config.json");
  const nlohmann::json config = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) return torch::kFloat32;
  for (const char* key : {"dtype", "torch_dtype"}) {
    auto it = config.find(key);
    if (it == config.end() || !it->is_string()) continue;
    auto dtype = ParseDtype(it->get<std::string>());
    if (dtype.ok()) return *dtype;
  }
  return torch::kFloat32;
}

void DeviceFlags::Register(cli::FlagSet& flags, bool with_dtype) {
  flags.String("device", &device,
               "where the model runs: cpu, cuda or cuda:N (a bare cuda on an actor rank is "
               "cuda:LOCAL_RANK)");
  if (with_dtype) {
    flags.String("dtype", &dtype,
                 "float32, bfloat16 or float16; default: the checkpoint's dtype on CUDA, "
                 "float32 on the CPU");
  }
}

absl::StatusOr<LoadOptions> DeviceFlags::Resolve(const std::filesystem::path& model_dir,
                                                 int64_t local_rank) const {
  LoadOptions options;
  auto parsed = ParseDevice(device, local_rank);
  if (!parsed.ok()) return parsed.status();
  if (auto s = CheckDeviceAvailable(*parsed); !s.ok()) return s;
  options.device = *parsed;
  if (!dtype.empty()) {
    auto parsed_dtype = ParseDtype(dtype);
    if (!parsed_dtype.ok()) return parsed_dtype.status();
    options.dtype = *parsed_dtype;
  } else {
    options.dtype = options.device.is_cuda() ? CheckpointDtype(model_dir) : torch::kFloat32;
  }
  return options;
}

}  // namespace rlhf::model
