#include "common/model/token_logprobs.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/model/limits.h"
#include "common/status/torch_status.h"

namespace rlhf::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// logits [n, V] float32 of one chunk. Under bf16 autocast the hidden states are bf16 and
// the float32 head is cast to them, in forward (autocast does it) and in backward
// (outside autocast: done here), so both passes see the same logits.
torch::Tensor ChunkLogits(const torch::Tensor& hidden, const torch::Tensor& weight,
                          double temperature) {
  const torch::Tensor w =
      weight.scalar_type() == hidden.scalar_type() ? weight : weight.to(hidden.scalar_type());
  torch::Tensor logits = torch::matmul(hidden, w.t()).to(torch::kFloat32);
  if (temperature != 1.0) logits.div_(temperature);
  return logits;
}

class ChunkedLogprobFunction : public torch::autograd::Function<ChunkedLogprobFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& weight, const torch::Tensor& targets,
                               int64_t chunk, double temperature, bool entropy) {
    const int64_t rows = hidden.size(0);
    auto float_options = hidden.options().dtype(torch::kFloat32);
    torch::Tensor logprobs = torch::empty({rows}, float_options);
    torch::Tensor entropies = torch::zeros({rows}, float_options);
    for (int64_t start = 0; start < rows; start += chunk) {
      const int64_t end = std::min(rows, start + chunk);
      // log_softmax in place over the chunk's logits: the only [chunk, V] buffer besides
      // the probabilities the entropy needs.
      torch::Tensor logp = ChunkLogits(hidden.slice(0, start, end), weight, temperature);
      logp.sub_(logp.logsumexp(-1, /*keepdim=*/true));
      logprobs.slice(0, start, end)
          .copy_(logp.gather(-1, targets.slice(0, start, end).unsqueeze(-1)).squeeze(-1));
      if (entropy) {
        // H = -sum p log p (not logsumexp - sum p z, which cancels badly for peaked rows).
        entropies.slice(0, start, end).copy_(-(logp.exp() * logp).sum(-1));
      }
    }
    ctx->save_for_backward({hidden, weight, targets});
    ctx->saved_data["chunk"] = chunk;
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["entropy"] = entropy;
    if (!entropy) ctx->mark_non_differentiable({entropies});
    return {logprobs, entropies};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const variable_list saved = ctx->get_saved_variables();
    const torch::Tensor& hidden = saved[0];
    const torch::Tensor& weight = saved[1];
    const torch::Tensor& targets = saved[2];
    const int64_t chunk = ctx->saved_data["chunk"].toInt();
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const bool entropy = ctx->saved_data["entropy"].toBool();
    torch::Tensor grad_logprob = grad_outputs[0];
    torch::Tensor grad_entropy = entropy ? grad_outputs[1] : torch::Tensor();
    const bool want_hidden = ctx->needs_input_grad(0);
    const bool want_weight = ctx->needs_input_grad(1);

    const int64_t rows = hidden.size(0);
    torch::Tensor grad_hidden = want_hidden ? torch::empty_like(hidden) : torch::Tensor();
    torch::Tensor grad_weight =
        want_weight ? torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat32))
                    : torch::Tensor();
    for (int64_t start = 0; start < rows; start += chunk) {
      const int64_t end = std::min(rows, start + chunk);
      torch::Tensor h = hidden.slice(0, start, end);
      torch::Tensor logits = ChunkLogits(h, weight, temperature);
      torch::Tensor lse = logits.logsumexp(-1, /*keepdim=*/true);
      torch::Tensor logp = logits - lse;
      torch::Tensor probs = logp.exp();
      // d logp_y / dz = onehot(y) - p
      torch::Tensor grad_logits = torch::zeros_like(logits);
      if (grad_logprob.defined()) {
        torch::Tensor g = grad_logprob.slice(0, start, end).to(torch::kFloat32).unsqueeze(-1);
        grad_logits = -probs * g;
        grad_logits.scatter_add_(-1, targets.slice(0, start, end).unsqueeze(-1), g);
      }
      // dH / dz = -p (log p + H)
      if (grad_entropy.defined()) {
        torch::Tensor g = grad_entropy.slice(0, start, end).to(torch::kFloat32).unsqueeze(-1);
        torch::Tensor h_value = -(probs * logp).sum(-1, /*keepdim=*/true);
        grad_logits.sub_(probs * (logp + h_value) * g);
      }
      if (temperature != 1.0) grad_logits.div_(temperature);
      if (want_hidden) {
        grad_hidden.slice(0, start, end)
            .copy_(torch::matmul(grad_logits.to(weight.scalar_type()), weight));
      }
      if (want_weight) grad_weight.add_(torch::matmul(grad_logits.t(), h.to(torch::kFloat32)));
    }
    if (want_weight) grad_weight = grad_weight.to(weight.scalar_type());
    return {grad_hidden,     grad_weight,     torch::Tensor(),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> ChunkedLogprobsAndEntropy(
    const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& targets,
    const TokenLogprobsOptions& options) {
  TORCH_CHECK_VALUE(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
                    "hidden [N, H] and weight [V, H] expected, got ", hidden.sizes(), " and ",
                    weight.sizes());
  TORCH_CHECK_VALUE(targets.dim() == 1 && targets.size(0) == hidden.size(0),
                    "targets must be [N] for hidden [N, H]");
  TORCH_CHECK_VALUE(options.chunk_tokens > 0, "chunk_tokens must be positive");
  TORCH_CHECK_VALUE(options.temperature > 0, "temperature must be positive");
  variable_list out = ChunkedLogprobFunction::apply(
      hidden, weight, targets.to(hidden.device(), torch::kInt64), options.chunk_tokens,
      static_cast<double>(options.temperature), options.compute_entropy);
  return {out[0], out[1]};
}

absl::StatusOr<TokenLogprobs> ComputeTokenLogprobs(CausalLm& model, const torch::Tensor& input_ids,
                                                   const torch::Tensor& attention_mask,
                                                   const TokenLogprobsOptions& options) {
  if (absl::Status s = ValidateInputs(model.config(), input_ids, attention_mask, 0); !s.ok()) {
    return s;
  }
  if (input_ids.size(1) < 2) {
    return absl::InvalidArgumentError("input_ids need at least 2 tokens to score a next token");
  }
  if (options.chunk_tokens <= 0 || !(options.temperature > 0)) {
    return absl::InvalidArgumentError("chunk_tokens and temperature must be positive");
  }
  return CatchTorchErrors("token logprobs", [&]() -> absl::StatusOr<TokenLogprobs> {
    // An all-ones mask is no mask: that lets attention use SDPA's causal kernel.
    torch::Tensor mask = attention_mask;
    if (mask.defined() && mask.to(torch::kBool).all().item<bool>()) mask = torch::Tensor();
    torch::Tensor hidden = model.ForwardHidden(input_ids, mask, {}, nullptr);
    const int64_t batch = hidden.size(0);
    const int64_t steps = hidden.size(1) - 1;
    torch::Tensor flat_hidden = hidden.slice(1, 0, steps).reshape({batch * steps, -1});
    torch::Tensor targets = input_ids.slice(1, 1).reshape({-1});
    auto [logprobs, entropy] =
        ChunkedLogprobsAndEntropy(flat_hidden, model.LmHeadWeight(), targets, options);
    TokenLogprobs out;
    out.logprobs = logprobs.view({batch, steps});
    out.entropy = entropy.view({batch, steps});
    if (model.has_value_head()) out.values = model.Values(hidden);
    return out;
  });
}

absl::StatusOr<TokenLogprobs> ComputeTokenLogprobsByRows(CausalLm& model,
                                                         const torch::Tensor& input_ids,
                                                         const torch::Tensor& attention_mask,
                                                         const TokenLogprobsOptions& options,
                                                         const std::function<bool()>& abandoned) {
  const int64_t rows = input_ids.size(0);
  const int64_t chunk_rows = ForwardChunkRows(input_ids.size(1));
  const torch::Device device = model.device();
  std::vector<torch::Tensor> logprobs, entropy, values;
  for (int64_t first = 0; first < rows; first += chunk_rows) {
    if (first > 0 && abandoned && abandoned()) {
      return absl::CancelledError(
          absl::StrCat("abandoned by the caller after ", first, " of ", rows, " sequences"));
    }
    const int64_t count = std::min(chunk_rows, rows - first);
    auto out = ComputeTokenLogprobs(model, input_ids.narrow(0, first, count).to(device),
                                    attention_mask.narrow(0, first, count).to(device), options);
    if (!out.ok()) return out.status();
    logprobs.push_back(out->logprobs.to(torch::kCPU, torch::kFloat32));
    entropy.push_back(out->entropy.to(torch::kCPU, torch::kFloat32));
    if (out->values.defined()) values.push_back(out->values.to(torch::kCPU, torch::kFloat32));
  }
  TokenLogprobs result;
  result.logprobs = torch::cat(logprobs);
  result.entropy = torch::cat(entropy);
  if (!values.empty()) result.values = torch::cat(values);
  return result;
}

}  // namespace rlhf::model
