#pragma once

// The model's dense layers: torch.nn.functional.linear and torch.addmm, with a fast path
// for few rows (common/model/dense_kernels.h). The fast path is taken for fp32 CPU tensors
// with at most kDenseMaxRows rows when autograd does not need the product (generation,
// scoring); everything else (training, GPU, bf16, long prefills) goes to torch.
//
// The two paths add in different orders, so results agree to fp32 rounding, not bitwise.
// Thread-compatible: no state; work is split over torch's intra-op threads.

#include <ATen/core/Tensor.h>

namespace rlhf::model {

// at::Tensor is torch::Tensor; this header stays light because dense.cc is built
// without the torch PCH (see CMakeLists.txt).

// Rows (product of x's leading dims) up to which the fast path is used: decode batches.
// On this project's CPU (AMD EPYC, where PyPI torch's MKL runs its generic code) the
// kernels are 1.9-3.3x torch up to 128 rows and still 1.5x at 1024 (dense_bench); past
// a decode batch, prefills and scoring stay with the BLAS, which on CPUs it is tuned for
// wins at many rows.
inline constexpr int64_t kDenseMaxRows = 128;

// torch.nn.functional.linear(x, weight, bias): x [..., in], weight [out, in], bias [out]
// or undefined. Returns [..., out].
at::Tensor Linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias = {});

// GPT-2's Conv1D: x [..., in] times weight [in, out] plus bias [out] (torch.addmm).
at::Tensor AddmmInOut(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// Whether Linear / AddmmInOut take the fast path for these operands.
bool DenseFastPath(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// The fast path itself, for any number of rows (tests and tests/bench/dense_bench.cc).
// Needs fp32 CPU operands and a contiguous weight; throws c10::Error otherwise.
at::Tensor FewRowLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);
at::Tensor FewRowAddmmInOut(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace rlhf::model
