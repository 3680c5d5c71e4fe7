#include "common/model/dense_kernels.h"

// Built with -O3 -ffp-contract=fast (common/model/CMakeLists.txt): full unrolling keeps the
// accumulators in registers, and multiply-adds fuse.
//
// Vectors are GCC vector extensions of 16 floats, so one source serves every x86 level:
// target_clones compiles each kernel for AVX-512, AVX2 and the baseline and picks one at
// load time from the CPU's features. Elsewhere the baseline alone is built.

#include <algorithm>

namespace rlhf::model::dense_kernels {
namespace {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RLHF_DENSE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define RLHF_DENSE_CLONES
#endif
#define RLHF_INLINE inline __attribute__((always_inline))

constexpr int kLanes = 16;
// aligned(4) and may_alias: loads and stores straight from float arrays at any offset.
typedef float Vec __attribute__((vector_size(kLanes * sizeof(float)), aligned(4), may_alias));

// Row chunks of up to kMaxChunk rows share one pass over a block of weights.
constexpr int kMaxChunk = 8;

// ---- weight [out, in]: one dot product per output --------------------------------------

// Outputs o .. o + kOut - 1 for kRows rows.
template <int kRows, int kOut>
RLHF_INLINE void DotBlock(const Rows& rows, int64_t r0, const float* weight, int64_t in,
                          const float* bias, int64_t o) {
  Vec acc[kOut][kRows] = {};
  const int64_t body = in / kLanes * kLanes;
  for (int64_t k = 0; k < body; k += kLanes) {
    Vec xv[kRows];
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      xv[r] = *reinterpret_cast<const Vec*>(rows.x + (r0 + r) * rows.x_stride + k);
    }
#pragma GCC unroll 8
    for (int j = 0; j < kOut; ++j) {
      const Vec wv = *reinterpret_cast<const Vec*>(weight + (o + j) * in + k);
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) acc[j][r] += wv * xv[r];
    }
  }
  for (int j = 0; j < kOut; ++j) {
    const float* w = weight + (o + j) * in;
    for (int r = 0; r < kRows; ++r) {
      const float* x = rows.x + (r0 + r) * rows.x_stride;
      float sum = 0.0f;
      for (int lane = 0; lane < kLanes; ++lane) sum += acc[j][r][lane];
      for (int64_t k = body; k < in; ++k) sum += x[k] * w[k];
      if (bias != nullptr) sum += bias[o + j];
      rows.y[(r0 + r) * rows.y_stride + o + j] = sum;
    }
  }
}

template <int kRows>
RLHF_DENSE_CLONES void LinearChunk(const Rows& rows, int64_t r0, const float* weight, int64_t in,
                                   const float* bias, int64_t begin, int64_t end) {
  // Several outputs per pass over x; fewer when there are more rows to hold.
  constexpr int kOut = kRows <= 2 ? 4 : 2;
  int64_t o = begin;
  for (; o + kOut <= end; o += kOut) DotBlock<kRows, kOut>(rows, r0, weight, in, bias, o);
  for (; o < end; ++o) DotBlock<kRows, 1>(rows, r0, weight, in, bias, o);
}

// ---- weight [in, out]: columns accumulate x[r, k] * weight[k, :] ------------------------

// Columns c .. c + kVecs * kLanes - 1 for kRows rows.
template <int kRows, int kVecs>
RLHF_INLINE void AxpyTile(const Rows& rows, int64_t r0, const float* weight, int64_t in,
                          int64_t out, const float* bias, int64_t c) {
  Vec acc[kRows][kVecs] = {};
  for (int64_t k = 0; k < in; ++k) {
    const float* w = weight + k * out + c;
    Vec wv[kVecs];
#pragma GCC unroll 8
    for (int t = 0; t < kVecs; ++t) wv[t] = *reinterpret_cast<const Vec*>(w + t * kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const float xs = rows.x[(r0 + r) * rows.x_stride + k];
#pragma GCC unroll 8
      for (int t = 0; t < kVecs; ++t) acc[r][t] += wv[t] * xs;
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int t = 0; t < kVecs; ++t) {
      Vec v = acc[r][t];
      if (bias != nullptr) v += *reinterpret_cast<const Vec*>(bias + c + t * kLanes);
      *reinterpret_cast<Vec*>(rows.y + (r0 + r) * rows.y_stride + c + t * kLanes) = v;
    }
  }
}

template <int kRows>
RLHF_DENSE_CLONES void AddmmChunk(const Rows& rows, int64_t r0, const float* weight, int64_t in,
                                  int64_t out, const float* bias, int64_t begin, int64_t end) {
  // Wide tiles for one row (long contiguous reads), narrower as rows take registers.
  constexpr int kVecs = kRows == 1 ? 8 : (kRows <= 3 ? 4 : 2);
  int64_t c = begin;
  for (; c + kVecs * kLanes <= end; c += kVecs * kLanes) {
    AxpyTile<kRows, kVecs>(rows, r0, weight, in, out, bias, c);
  }
  for (; c + kLanes <= end; c += kLanes) AxpyTile<kRows, 1>(rows, r0, weight, in, out, bias, c);
  // Fewer than 16 columns left: the same in-order sum, one column at a time.
  for (; c < end; ++c) {
    for (int r = 0; r < kRows; ++r) {
      const float* x = rows.x + (r0 + r) * rows.x_stride;
      float sum = 0.0f;
      for (int64_t k = 0; k < in; ++k) sum += x[k] * weight[k * out + c];
      if (bias != nullptr) sum += bias[c];
      rows.y[(r0 + r) * rows.y_stride + c] = sum;
    }
  }
}

// Calls body.template operator()<n>() for n = min(remaining, kMaxChunk) chunks of rows.
template <typename Body>
void ForEachRowChunk(int64_t count, Body body) {
  for (int64_t r0 = 0; r0 < count; r0 += kMaxChunk) {
    switch (std::min<int64_t>(kMaxChunk, count - r0)) {
      case 1:
        body.template operator()<1>(r0);
        break;
      case 2:
        body.template operator()<2>(r0);
        break;
      case 3:
        body.template operator()<3>(r0);
        break;
      case 4:
        body.template operator()<4>(r0);
        break;
      case 5:
        body.template operator()<5>(r0);
        break;
      case 6:
        body.template operator()<6>(r0);
        break;
      case 7:
        body.template operator()<7>(r0);
        break;
      default:
        body.template operator()<8>(r0);
        break;
    }
  }
}

// Outputs are visited in blocks so that a block's weights stay in cache while every row
// chunk passes over them; block edges are fixed multiples, whatever the range.
constexpr int64_t kLinearBlock = 16;  // outputs: 16 weight rows
constexpr int64_t kAddmmBlock = 128;  // columns: 8 vectors

}  // namespace

void LinearRange(const Rows& rows, const float* weight, int64_t in, const float* bias,
                 int64_t begin, int64_t end) {
  for (int64_t block = begin; block < end; block = (block / kLinearBlock + 1) * kLinearBlock) {
    const int64_t block_end = std::min(end, (block / kLinearBlock + 1) * kLinearBlock);
    ForEachRowChunk(rows.count, [&]<int kRows>(int64_t r0) {
      LinearChunk<kRows>(rows, r0, weight, in, bias, block, block_end);
    });
  }
}

void AddmmRange(const Rows& rows, const float* weight, int64_t in, int64_t out, const float* bias,
                int64_t begin, int64_t end) {
  for (int64_t block = begin; block < end; block = (block / kAddmmBlock + 1) * kAddmmBlock) {
    const int64_t block_end = std::min(end, (block / kAddmmBlock + 1) * kAddmmBlock);
    ForEachRowChunk(rows.count, [&]<int kRows>(int64_t r0) {
      AddmmChunk<kRows>(rows, r0, weight, in, out, bias, block, block_end);
    });
  }
}

}  // namespace rlhf::model::dense_kernels
