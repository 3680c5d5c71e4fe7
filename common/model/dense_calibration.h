#pragma once

// Which of the two dense paths is faster on this machine (common/model/dense.h): the
// few-row kernels or torch's BLAS. Which one wins depends on the CPU, the BLAS's tuning for
// it and the product's shape (on AMD EPYC, PyPI torch's MKL runs generic code and the
// kernels are 1.9-3.3x it up to 128 rows; on an Intel Xeon with AVX-512 MKL wins most
// GPT-2 products), so it is measured, not assumed: per product shape (layout, in, out) and
// intra-op thread count, for each power-of-two row bucket 1..128, on the model's own
// weight, best of 5 alternating runs after a warm-up.
//
// The result is cached per machine (CPU model, logical cores, torch version) in
// $RLHF_CACHE_DIR, else $XDG_CACHE_HOME/rlhf, else ~/.cache/rlhf
// (dense-calibration-v2.tsv; delete it to measure again), measured once under a file lock,
// so every process on a machine takes the same path for the same product and their
// results agree bitwise (the two paths agree only to fp32 rounding). The first decode
// step of a model on a new machine pays the measurement (about a second per GB of
// weights); without a writable cache directory each process measures for itself.
//
// RLHF_DENSE_FAST_PATH=auto (default, measured) | always | never overrides the choice.
// Thread-safe.

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <string>

namespace rlhf::model {

enum class DenseLayout {
  kLinear,  // x [.., in] @ weight [out, in]^T (+ bias): F.linear
  kAddmm,   // x [.., in] @ weight [in, out] + bias: GPT-2's Conv1D
};

// Row buckets: rows r use bucket ceil(log2(r)), i.e. 1, 2, 3-4, 5-8, ..., 65-128.
inline constexpr int kDenseRowBuckets = 8;
using DenseBuckets = std::array<bool, kDenseRowBuckets>;  // true: the kernel was faster

// Whether the few-row kernel should compute `rows` rows (1..128) of this product (weight
// and bias as Linear / AddmmInOut take them) at torch's current intra-op thread count.
// The first call for a shape and thread count may measure or read the cache.
bool FewRowKernelWins(DenseLayout layout, const at::Tensor& weight, const at::Tensor& bias,
                      int64_t rows);

// One measurement on `weight` at the current thread count (no cache).
DenseBuckets MeasureDenseBuckets(DenseLayout layout, const at::Tensor& weight,
                                 const at::Tensor& bias);

// This machine as the cache names it (CPU model, logical cores, torch version). A cache
// line is "<machine>\t<threads>\t<linear|addmm>\t<in>\t<out>\t<buckets>", the buckets as
// "1,1,0,0,0,0,0,0".
std::string DenseCalibrationMachineKey();

}  // namespace rlhf::model
