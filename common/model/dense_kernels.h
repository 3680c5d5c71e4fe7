#pragma once

// Matrix products for a few rows of fp32 input (decode steps: one row per sequence).
// With so few rows a product is a stream over the weights, and speed is how close the
// stream comes to memory bandwidth. The BLAS that PyPI's torch calls reaches about 15 GB/s
// on this AMD EPYC for one row where a plain read reaches about 33 GB/s; these kernels
// reach the latter (tests/bench/dense_bench.cc measures both).
//
// Raw pointers, no torch: common/model/dense.h wraps them for tensors and threads.
// Each output element is computed the same way whatever range a call covers, so the
// result does not depend on how the work was split between threads.

#include <cstdint>

namespace rlhf::model::dense_kernels {

// Rows of input: x[r * x_stride + k] for r < rows, k < in. Outputs: y[r * y_stride + o].
struct Rows {
  int64_t count;
  const float* x;
  int64_t x_stride;
  float* y;
  int64_t y_stride;
};

// torch.nn.functional.linear layout, weight [out, in]:
//   y[r, o] = sum_k x[r, k] * weight[o, k] + bias[o]   for o in [begin, end).
// `bias` may be null. The k sum is done in 16 lanes, then the lanes are added.
void LinearRange(const Rows& rows, const float* weight, int64_t in, const float* bias,
                 int64_t begin, int64_t end);

// torch.addmm layout (GPT-2's Conv1D), weight [in, out]:
//   y[r, c] = sum_k x[r, k] * weight[k, c] + bias[c]   for c in [begin, end).
// `bias` may be null. The k sum runs in order for each column.
void AddmmRange(const Rows& rows, const float* weight, int64_t in, int64_t out, const float* bias,
                int64_t begin, int64_t end);

}  // namespace rlhf::model::dense_kernels
