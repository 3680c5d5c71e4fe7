#include "common/model/weights.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/torch_status.h"

namespace rlhf::model {
namespace {

std::string ShapeString(c10::IntArrayRef shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

absl::StatusOr<torch::ScalarType> ToTorchDType(io::DType dtype) {
  switch (dtype) {
    case io::DType::kF32:
      return torch::kFloat32;
    case io::DType::kF16:
      return torch::kFloat16;
    case io::DType::kBF16:
      return torch::kBFloat16;
    default:
      return absl::InvalidArgumentError(absl::StrCat("unsupported weight dtype ",
                                                     std::string(io::DTypeName(dtype)),
                                                     " (supported: F32, F16, BF16)"));
  }
}

}  // namespace

absl::StatusOr<io::DType> ToIoDType(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32:
      return io::DType::kF32;
    case torch::kFloat16:
      return io::DType::kF16;
    case torch::kBFloat16:
      return io::DType::kBF16;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unsupported weight dtype ", c10::toString(dtype)));
  }
}

absl::StatusOr<WeightLoadReport> LoadWeights(torch::nn::Module& module,
                                             const io::SafetensorsCheckpoint& checkpoint,
                                             const std::string& source,
                                             const WeightLoadRules& rules) {
  WeightLoadReport report;
  std::set<std::string> used;
  const std::string prefix = rules.backbone_prefix + ".";
  torch::NoGradGuard no_grad;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    const io::TensorView* view = checkpoint.Find(name);
    if (view == nullptr && name.starts_with(prefix)) {
      view = checkpoint.Find(std::string_view(name).substr(prefix.size()));
    }
    if (view == nullptr) {
      if (rules.may_be_missing && rules.may_be_missing(name)) {
        report.initialized.push_back(name);
        continue;
      }
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint ", source, " has no tensor \"", name, "\""));
    }
    used.insert(view->name);
    absl::StatusOr<torch::ScalarType> dtype = ToTorchDType(view->dtype);
    if (!dtype.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor \"", view->name, "\" in ", source, ": ", dtype.status().message()));
    }
    if (!std::equal(view->shape.begin(), view->shape.end(), param.sizes().begin(),
                    param.sizes().end())) {
      return absl::InvalidArgumentError(absl::StrCat("tensor \"", view->name, "\" in ", source,
                                                     " has shape ", ShapeString(view->shape),
                                                     ", expected ", ShapeString(param.sizes())));
    }
    if (param.numel() == 0) continue;
    absl::Status copied = CatchTorchErrors(absl::StrCat("loading \"", name, "\""), [&] {
      // The mapped file is read-only; from_blob only reads here (copy_ source).
      torch::Tensor blob = torch::from_blob(const_cast<uint8_t*>(view->data), view->shape,
                                            torch::TensorOptions().dtype(*dtype));
      param.copy_(blob);
      return absl::OkStatus();
    });
    if (!copied.ok()) return copied;
  }
  for (const io::TensorView* view : checkpoint.tensors()) {
    if (used.contains(view->name)) continue;
    if (std::find(rules.silently_ignored.begin(), rules.silently_ignored.end(), view->name) !=
        rules.silently_ignored.end()) {
      continue;
    }
    report.unexpected.push_back(view->name);
  }
  return report;
}

absl::StatusOr<SavedTensors> CollectWeights(const torch::nn::Module& module,
                                            torch::ScalarType dtype) {
  absl::StatusOr<io::DType> io_dtype = ToIoDType(dtype);
  if (!io_dtype.ok()) return io_dtype.status();
  return CatchTorchErrors("collecting weights", [&]() -> absl::StatusOr<SavedTensors> {
    torch::NoGradGuard no_grad;
    SavedTensors saved;
    for (auto& item : module.named_parameters(/*recurse=*/true)) {
      torch::Tensor cpu = item.value().detach().to(torch::kCPU, dtype).contiguous();
      io::TensorView view;
      view.name = item.key();
      view.dtype = *io_dtype;
      view.shape.assign(cpu.sizes().begin(), cpu.sizes().end());
      view.data = static_cast<const uint8_t*>(cpu.data_ptr());
      view.nbytes = cpu.nbytes();
      saved.storage.push_back(std::move(cpu));
      saved.views.push_back(std::move(view));
    }
    return saved;
  });
}

}  // namespace rlhf::model
