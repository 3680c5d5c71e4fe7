#include "common/model/dense.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <vector>

#include "common/model/dense_calibration.h"
#include "common/model/dense_kernels.h"

namespace rlhf::model {
namespace {

// A thread gets at least this many weight bytes, so small layers stay on one thread
// (waking the pool costs microseconds; 256 KiB streams in about 8).
constexpr int64_t kMinBytesPerTask = 256 * 1024;
// Work is split at multiples of these (the kernels' own blocks), so which thread computes
// an output never changes how it is computed.
constexpr int64_t kSplitUnit = 128;

bool IsFloatCpu(const at::Tensor& t) {
  return t.device().is_cpu() && t.scalar_type() == at::kFloat;
}

// Runs fn(begin, end) over [0, n) in kSplitUnit-aligned ranges on torch's threads.
template <typename Fn>
void ParallelOverOutputs(int64_t n, int64_t bytes_per_output, Fn fn) {
  const int64_t units = (n + kSplitUnit - 1) / kSplitUnit;
  const int64_t unit_bytes = std::max<int64_t>(1, bytes_per_output * kSplitUnit);
  const int64_t grain = std::max<int64_t>(1, kMinBytesPerTask / unit_bytes);
  at::parallel_for(0, units, grain, [&](int64_t begin, int64_t end) {
    fn(begin * kSplitUnit, std::min(n, end * kSplitUnit));
  });
}

// x as [rows, in] with unit stride along `in`; the rows may be strided.
at::Tensor Flatten(const at::Tensor& x) {
  at::Tensor flat = x.reshape({-1, x.size(-1)});
  return flat.stride(1) == 1 ? flat : flat.contiguous();
}

std::vector<int64_t> OutputShape(const at::Tensor& x, int64_t out) {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out;
  return shape;
}

// x [..., in] against weight [out, in] (in_dim 1) or [in, out] (in_dim 0) and bias [out].
bool ShapesMatch(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                 int64_t in_dim) {
  return weight.dim() == 2 && x.dim() >= 1 && x.size(-1) == weight.size(in_dim) &&
         (!bias.defined() || (bias.dim() == 1 && bias.size(0) == weight.size(1 - in_dim)));
}

// Checks the operands, then runs kernel(rows, weight, in, out, bias, begin, end) over the
// outputs on torch's threads. The kernels need fp32 CPU operands and contiguous weight
// and bias.
template <typename Kernel>
at::Tensor RunKernel(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                     int64_t in_dim, Kernel kernel) {
  TORCH_CHECK(IsFloatCpu(x) && IsFloatCpu(weight) && (!bias.defined() || IsFloatCpu(bias)),
              "few-row dense kernels need float32 CPU tensors");
  TORCH_CHECK(ShapesMatch(x, weight, bias, in_dim), "x ", x.sizes(), " does not match weight ",
              weight.sizes(), " or its bias");
  TORCH_CHECK(weight.is_contiguous() && (!bias.defined() || bias.is_contiguous()),
              "weight and bias must be contiguous");
  const int64_t in = weight.size(in_dim);
  const int64_t out = weight.size(1 - in_dim);
  const at::Tensor flat = Flatten(x);
  at::Tensor y = at::empty({flat.size(0), out}, x.options());
  const dense_kernels::Rows rows{flat.size(0), flat.data_ptr<float>(), flat.stride(0),
                                 y.data_ptr<float>(), y.stride(0)};
  const float* w = weight.data_ptr<float>();
  const float* b = bias.defined() ? bias.data_ptr<float>() : nullptr;
  ParallelOverOutputs(out, in * 4,
                      [&](int64_t begin, int64_t end) { kernel(rows, w, in, out, b, begin, end); });
  return y.view(OutputShape(x, out));
}

}  // namespace

bool DenseFastPath(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (!IsFloatCpu(x) || !IsFloatCpu(weight) || weight.dim() != 2 || x.dim() < 1) return false;
  if (bias.defined() && (!IsFloatCpu(bias) || bias.dim() != 1 || !bias.is_contiguous())) {
    return false;
  }
  if (!weight.is_contiguous() || weight.numel() == 0) return false;
  const bool needs_grad =
      x.requires_grad() || weight.requires_grad() || (bias.defined() && bias.requires_grad());
  if (needs_grad && c10::GradMode::is_enabled()) return false;
  const int64_t in = x.size(-1);
  const int64_t rows = in == 0 ? 0 : x.numel() / in;
  return rows >= 1 && rows <= kDenseMaxRows;
}

at::Tensor FewRowLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return RunKernel(
      x, weight, bias, /*in_dim=*/1,
      [](const dense_kernels::Rows& rows, const float* w, int64_t in, int64_t, const float* b,
         int64_t begin, int64_t end) { dense_kernels::LinearRange(rows, w, in, b, begin, end); });
}

at::Tensor FewRowAddmmInOut(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  return RunKernel(x, weight, bias, /*in_dim=*/0, dense_kernels::AddmmRange);
}

at::Tensor Linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (DenseFastPath(x, weight, bias) && ShapesMatch(x, weight, bias, /*in_dim=*/1) &&
      FewRowKernelWins(DenseLayout::kLinear, weight, bias, x.numel() / x.size(-1))) {
    return FewRowLinear(x, weight, bias);
  }
  return at::linear(x, weight, bias);
}

at::Tensor AddmmInOut(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  if (DenseFastPath(x, weight, bias) && ShapesMatch(x, weight, bias, /*in_dim=*/0) &&
      FewRowKernelWins(DenseLayout::kAddmm, weight, bias, x.numel() / x.size(-1))) {
    return FewRowAddmmInOut(x, weight, bias);
  }
  const at::Tensor flat = x.reshape({-1, x.size(-1)});
  const at::Tensor y = bias.defined() ? at::addmm(bias, flat, weight) : flat.mm(weight);
  return y.view(OutputShape(x, weight.size(1)));
}

}  // namespace rlhf::model
