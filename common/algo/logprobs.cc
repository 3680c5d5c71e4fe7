#include "common/algo/logprobs.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/Parallel.h>

#include "absl/strings/str_cat.h"
#include "common/algo/checks.h"

namespace rlhf::algo {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Below this a probability is exactly 0 in float32 and float64 (2^-1e4 underflows), so
// clamping log2 p here changes nothing but keeps 0 * log 0 = 0 for -inf logits.
constexpr double kMinLogp = -1e4;
constexpr double kLog2E = 1.4426950408889634;  // log2(e)

struct Blocking {
  int64_t batch, time, vocab, block, blocks_per_row;
  bool parallel;  // CPU: blocks run on the intra-op thread pool
};

Blocking MakeBlocking(const torch::Tensor& logits, int64_t chunk) {
  Blocking b{logits.size(0), logits.size(1), logits.size(2), 0, 0, logits.is_cpu()};
  // CPU: cache-sized blocks, many per thread. Accelerators: one row per launch.
  constexpr int64_t kBlockBytes = 1024 * 1024;  // measured: 256 KiB..4 MiB within 10%
  b.block = chunk > 0    ? chunk
            : b.parallel ? std::max<int64_t>(1, kBlockBytes / (4 * std::max<int64_t>(b.vocab, 1)))
                         : b.time;
  b.block = std::min(b.block, std::max<int64_t>(b.time, 1));
  b.blocks_per_row = (b.time + b.block - 1) / b.block;
  return b;
}

// Runs fn(b, t0, len) over all blocks; on CPU in parallel, where the ATen ops inside run
// single-threaded.
template <typename Fn>
void ForEachBlock(const Blocking& k, const Fn& fn) {
  const int64_t total = k.batch * k.blocks_per_row;
  const auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / k.blocks_per_row;
      const int64_t t0 = (i % k.blocks_per_row) * k.block;
      fn(b, t0, std::min(k.block, k.time - t0));
    }
  };
  if (k.parallel) {
    at::parallel_for(0, total, 1, run);
  } else {
    run(0, total);
  }
}

torch::ScalarType ComputeType(const torch::Tensor& logits) {
  return logits.scalar_type() == torch::kDouble ? torch::kDouble : torch::kFloat;
}

// logits[b, t0:t0+len] in the compute dtype (a view unless the logits are half/bf16), [len, V].
torch::Tensor Block(const torch::Tensor& logits, int64_t b, int64_t t0, int64_t len) {
  return logits.select(0, b).narrow(0, t0, len).to(ComputeType(logits));
}

class LogprobsEntropyFunction : public torch::autograd::Function<LogprobsEntropyFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& logits,
                               const torch::Tensor& targets, int64_t chunk, double temperature,
                               bool compute_entropy) {
    const Blocking k = MakeBlocking(logits, chunk);
    const auto options = logits.options().dtype(ComputeType(logits));
    torch::Tensor logprobs = torch::empty({k.batch, k.time}, options);
    torch::Tensor lse = torch::empty({k.batch, k.time}, options);
    torch::Tensor entropy = compute_entropy ? torch::empty({k.batch, k.time}, options)
                                            : torch::zeros({k.batch, k.time}, options);
    const double scale = kLog2E / temperature;
    ForEachBlock(k, [&](int64_t b, int64_t t0, int64_t len) {
      // In base 2 (exp2 is several times faster than exp in ATen's CPU kernels), with
      // u = z log2(e) / temperature and m = max u: x = u - m, e = 2^x, S = sum e,
      // lse = (m + log2 S) ln 2, H = (log2 S - sum(e x) / S) ln 2. One exp2 pass.
      const torch::Tensor z = Block(logits, b, t0, len);
      const torch::Tensor m = z.amax(-1, /*keepdim=*/true).mul_(scale);
      torch::Tensor x = torch::add(-m, z, scale);
      if (compute_entropy) x.clamp_min_(kMinLogp);  // e = 0 there anyway; keeps e * x finite
      const torch::Tensor e = x.exp2();
      const torch::Tensor log2_sum = e.sum(-1, /*keepdim=*/true).log2_();
      const torch::Tensor block_lse = (m + log2_sum).squeeze(-1).mul_(M_LN2);
      const torch::Tensor tgt = targets.select(0, b).narrow(0, t0, len).unsqueeze(-1);
      logprobs.select(0, b)
          .narrow(0, t0, len)
          .copy_(z.gather(-1, tgt).squeeze(-1) * (1.0 / temperature) - block_lse);
      lse.select(0, b).narrow(0, t0, len).copy_(block_lse);
      if (compute_entropy) {
        const torch::Tensor sum_ex = torch::linalg_vecdot(e, x).unsqueeze(-1);
        entropy.select(0, b)
            .narrow(0, t0, len)
            .copy_((log2_sum - sum_ex / log2_sum.exp2()).squeeze(-1).mul_(M_LN2));
      }
    });
    ctx->set_materialize_grads(false);  // an unused output's gradient stays undefined: no work
    ctx->save_for_backward({logits, targets, lse, entropy});
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["temperature"] = temperature;
    if (!compute_entropy) ctx->mark_non_differentiable({entropy});
    return {logprobs, entropy};
  }

  // d logp_y / d z_v = [v == y] - p_v;  d H / d z_v = -p_v (log p_v + H); both / temperature.
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& logits = saved[0];
    const torch::Tensor& targets = saved[1];
    const torch::Tensor& lse = saved[2];
    const torch::Tensor& entropy = saved[3];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const torch::Tensor& g_lp = grads[0];
    const torch::Tensor& g_h = grads[1];
    const bool has_lp = g_lp.defined();
    const bool has_h = g_h.defined();
    const Blocking k = MakeBlocking(logits, chunk);
    torch::Tensor grad = torch::empty(logits.sizes(), logits.options());
    if (!has_lp && !has_h) return {grad.zero_(), {}, {}, {}, {}};
    const bool direct = ComputeType(logits) == logits.scalar_type();
    const double inv_t = 1.0 / temperature;
    ForEachBlock(k, [&](int64_t b, int64_t t0, int64_t len) {
      torch::Tensor out = grad.select(0, b).narrow(0, t0, len);
      const torch::Tensor z = Block(logits, b, t0, len);
      const torch::Tensor neg_lse2 = lse.select(0, b).narrow(0, t0, len).unsqueeze(-1) * -kLog2E;
      // work = log2 p = (z / temperature - lse) log2(e), written straight into the gradient
      // when the dtypes agree. Then grad = p (a + c ln2 log2 p) + [v == y] g_lp, all divided
      // by the temperature, with a = -(g_lp + g_H H) and c = -g_H per position.
      torch::Tensor work = direct ? out : torch::empty_like(z);
      torch::add_out(work, neg_lse2, z, kLog2E * inv_t);
      torch::Tensor glp;
      if (has_lp) {
        glp = g_lp.select(0, b).narrow(0, t0, len).unsqueeze(-1).to(z.scalar_type()) * inv_t;
      }
      if (has_h) {
        const torch::Tensor gh =
            g_h.select(0, b).narrow(0, t0, len).unsqueeze(-1).to(z.scalar_type()) * inv_t;
        const torch::Tensor h = entropy.select(0, b).narrow(0, t0, len).unsqueeze(-1);
        torch::Tensor a = -gh * h;
        if (has_lp) a = a - glp;
        work.clamp_min_(kMinLogp);
        const torch::Tensor p = work.exp2();
        work.mul_(gh * -M_LN2).add_(a).mul_(p);
      } else {
        work.exp2_().mul_(-glp);
      }
      if (has_lp) {
        const torch::Tensor tgt = targets.select(0, b).narrow(0, t0, len).unsqueeze(-1);
        work.scatter_add_(-1, tgt, glp);
      }
      if (!direct) out.copy_(work);
    });
    return {grad, {}, {}, {}, {}};
  }
};

absl::Status CheckLogitsAndTargets(absl::string_view fn, const torch::Tensor& logits,
                                   const torch::Tensor& targets, double temperature) {
  if (auto s = CheckFloat(fn, "logits", logits, 3); !s.ok()) return s;
  if (!targets.defined() || targets.scalar_type() != torch::kLong) {
    return absl::InvalidArgumentError(absl::StrCat(fn, ": targets must be int64"));
  }
  if (targets.dim() != 2 || targets.size(0) != logits.size(0) ||
      targets.size(1) != logits.size(1)) {
    return absl::InvalidArgumentError(absl::StrCat(fn, ": targets has shape ", ShapeString(targets),
                                                   " but logits has ", ShapeString(logits)));
  }
  if (logits.size(2) == 0)
    return absl::InvalidArgumentError(absl::StrCat(fn, ": empty vocabulary"));
  if (!(temperature > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(fn, ": temperature must be > 0, got ", temperature));
  }
  if (targets.numel() > 0) {
    const auto [lo, hi] = torch::aminmax(targets);
    if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= logits.size(2)) {
      return absl::InvalidArgumentError(absl::StrCat(fn, ": targets must lie in [0, ",
                                                     logits.size(2), "), got [", lo.item<int64_t>(),
                                                     ", ", hi.item<int64_t>(), "]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LogprobsAndEntropy> LogprobsAndEntropyFromLogits(const torch::Tensor& logits,
                                                                const torch::Tensor& targets,
                                                                const LogprobOptions& options) {
  constexpr absl::string_view kFn = "LogprobsAndEntropyFromLogits";
  if (auto s = CheckLogitsAndTargets(kFn, logits, targets, options.temperature); !s.ok()) return s;
  return RunGuarded(kFn, [&]() -> absl::StatusOr<LogprobsAndEntropy> {
    if (logits.stride(2) != 1) {
      return absl::InvalidArgumentError(
          "LogprobsAndEntropyFromLogits: the vocabulary dim must be contiguous");
    }
    variable_list out =
        LogprobsEntropyFunction::apply(logits, targets.to(logits.device()), options.chunk,
                                       options.temperature, options.compute_entropy);
    LogprobsAndEntropy result;
    result.logprobs = out[0];
    if (options.compute_entropy) result.entropy = out[1];
    return result;
  });
}

absl::StatusOr<torch::Tensor> LogprobsFromLogits(const torch::Tensor& logits,
                                                 const torch::Tensor& targets, int64_t chunk,
                                                 double temperature) {
  LogprobOptions options;
  options.chunk = chunk;
  options.temperature = temperature;
  options.compute_entropy = false;
  auto result = LogprobsAndEntropyFromLogits(logits, targets, options);
  if (!result.ok()) return result.status();
  return result->logprobs;
}

absl::StatusOr<torch::Tensor> EntropyFromLogits(const torch::Tensor& logits, int64_t chunk,
                                                double temperature) {
  if (auto s = CheckFloat("EntropyFromLogits", "logits", logits, 3); !s.ok()) return s;
  LogprobOptions options;
  options.chunk = chunk;
  options.temperature = temperature;
  auto result = LogprobsAndEntropyFromLogits(
      logits, torch::zeros({logits.size(0), logits.size(1)}, logits.options().dtype(torch::kLong)),
      options);
  if (!result.ok()) return result.status();
  return result->entropy;
}

}  // namespace rlhf::algo
