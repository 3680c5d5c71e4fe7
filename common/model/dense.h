#pragma once

// The model's dense layers: torch.nn.functional.linear and torch.addmm, with a fast path
// for few rows (common/model/dense_kernels.h). The fast path is eligible for fp32 CPU
// tensors with at most kDenseMaxRows rows when autograd does not need the product
// (generation, scoring), and taken where this machine's calibration measured it faster
// than torch for that row count (common/model/dense_calibration.h); everything else
// (training, GPU, bf16, long prefills) goes to torch.
//
// The two paths add in different orders, so results agree to fp32 rounding, not bitwise.
// Thread-compatible: no state; work is split over torch's intra-op threads.

#include <ATen/core/Tensor.h>

namespace rlhf::model {

// at::Tensor is torch::Tensor; this header stays light because dense.cc is built
// without the torch PCH (see CMakeLists.txt).

// Rows (product of x's leading dims) up to which the fast path is eligible: decode batches.
// On AMD EPYC (where PyPI torch's MKL runs its generic code) the kernels are 1.9-3.3x
// torch up to 128 rows; on an Intel Xeon with AVX-512 0.45-1.07x (dense_bench), so the
// calibration keeps torch there. Past a decode batch, prefills and scoring stay with the
// BLAS.
inline constexpr int64_t kDenseMaxRows = 128;

// torch.nn.functional.linear(x, weight, bias): x [..., in], weight [out, in], bias [out]
// or undefined. Returns [..., out].
at::Tensor Linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

// GPT-2's Conv1D: x [..., in] times weight [in, out] plus bias [out] (torch.addmm).
at::Tensor AddmmInOut(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// Whether the fast path is eligible for these operands (Linear / AddmmInOut then take it
// where the calibration says it wins).
bool DenseFastPath(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// The fast path itself, for any number of rows (tests and tests/bench/dense_bench.cc).
// Needs fp32 CPU operands and a contiguous weight; throws c10::Error otherwise.
at::Tensor FewRowLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
at::Tensor FewRowAddmmInOut(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace rlhf::model
