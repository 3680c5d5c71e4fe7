#include "common/model/generation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/model/kv_cache.h"
#include "common/status/torch_status.h"

namespace rlhf::model {
namespace {

absl::Status ValidateRequest(const ModelConfig& config,
                             std::span<const std::vector<int64_t>> prompts,
                             const SamplingParams& params, std::span<const uint64_t> seeds) {
  if (prompts.empty()) return absl::InvalidArgumentError("no prompts to generate from");
  if (seeds.size() != prompts.size()) {
    return absl::InvalidArgumentError(absl::StrCat("got ", seeds.size(), " seeds for ",
                                                   prompts.size(), " prompts; need one each"));
  }
  if (absl::Status s = ValidateSamplingParams(params); !s.ok()) return s;
  for (size_t b = 0; b < prompts.size(); ++b) {
    const std::vector<int64_t>& prompt = prompts[b];
    if (prompt.empty()) return absl::InvalidArgumentError(absl::StrCat("prompt ", b, " is empty"));
    const int64_t needed = static_cast<int64_t>(prompt.size()) + params.max_new_tokens;
    if (needed > config.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt ", b, " has ", prompt.size(), " tokens; with max_new_tokens ",
                       params.max_new_tokens, " that is longer than the model's context of ",
                       config.max_position_embeddings, " tokens (max_position_embeddings)"));
    }
    for (int64_t id : prompt) {
      if (id < 0 || id >= config.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat("prompt ", b, " has token id ", id,
                                                       " outside the vocabulary [0, ",
                                                       config.vocab_size, ")"));
      }
    }
  }
  return absl::OkStatus();
}

// owner[b]: the first row of the run of identical adjacent prompts row b belongs to, when
// some prompt repeats (a GRPO/RLOO group's n samples); empty when none does.
std::vector<int64_t> PromptOwners(std::span<const std::vector<int64_t>> prompts) {
  std::vector<int64_t> owner(prompts.size());
  bool repeated = false;
  for (size_t b = 0; b < prompts.size(); ++b) {
    const bool same = b > 0 && prompts[b] == prompts[owner[b - 1]];
    owner[b] = same ? owner[b - 1] : static_cast<int64_t>(b);
    repeated = repeated || same;
  }
  return repeated ? owner : std::vector<int64_t>();
}

// Runs the prompts through the model into `cache` and returns the last position's logits
// [B, vocab]. With `owner` (PromptOwners), only the distinct prompts are run, in a cache of
// their own, whose rows are then copied to every row that repeats them.
torch::Tensor Prefill(CausalLm& model, const torch::Tensor& input_ids, const torch::Tensor& mask,
                      const std::vector<int64_t>& owner, KvCache& cache) {
  if (owner.empty()) {
    return model.Logits(model.ForwardHidden(input_ids, mask, {}, &cache).select(1, -1));
  }
  std::vector<int64_t> firsts, index(owner.size());
  for (size_t b = 0; b < owner.size(); ++b) {
    if (owner[b] == static_cast<int64_t>(b)) firsts.push_back(static_cast<int64_t>(b));
    index[b] = static_cast<int64_t>(firsts.size()) - 1;
  }
  const torch::Tensor distinct = torch::tensor(firsts, torch::kInt64);
  absl::StatusOr<KvCache> shared =
      KvCache::Create(model.config(), static_cast<int64_t>(firsts.size()), input_ids.size(1),
                      model.dtype(), model.device());
  TORCH_CHECK(shared.ok(), std::string(shared.status().message()));
  const torch::Tensor hidden = model.ForwardHidden(
      input_ids.index_select(0, distinct),
      mask.defined() ? mask.index_select(0, distinct.to(mask.device())) : torch::Tensor(), {},
      &*shared);
  const torch::Tensor rows = torch::tensor(index, torch::kInt64).to(model.device());
  cache.CopyRowsFrom(*shared, rows);
  return model.Logits(hidden.select(1, -1)).index_select(0, rows);
}

// The generation loop proper; throws c10::Error, which Generate turns into a Status.
absl::StatusOr<GenerationOutput> RunGeneration(CausalLm& model,
                                               std::span<const std::vector<int64_t>> prompts,
                                               const SamplingParams& params,
                                               std::span<const uint64_t> seeds, KvCache& cache,
                                               const std::function<bool()>& abandoned) {
  const int64_t batch = static_cast<int64_t>(prompts.size());
  const torch::Device device = model.device();
  int64_t prompt_length = 0;
  for (const auto& prompt : prompts) {
    prompt_length = std::max<int64_t>(prompt_length, static_cast<int64_t>(prompt.size()));
  }
  const int64_t max_length = cache.max_length();

  // Left padding, as transformers requires for decoder-only generation.
  torch::Tensor input_ids = torch::zeros({batch, prompt_length}, torch::kInt64);
  torch::Tensor mask = torch::ones({batch, max_length}, torch::kInt64);
  bool padded = false;
  for (int64_t b = 0; b < batch; ++b) {
    const auto& prompt = prompts[b];
    const int64_t pad = prompt_length - static_cast<int64_t>(prompt.size());
    padded = padded || pad > 0;
    mask[b].slice(0, 0, pad).zero_();
    std::copy(prompt.begin(), prompt.end(), input_ids[b].data_ptr<int64_t>() + pad);
  }
  mask = mask.to(device);

  std::vector<at::Generator> generators;
  for (uint64_t seed : seeds) generators.push_back(at::make_generator<at::CPUGeneratorImpl>(seed));
  std::vector<int64_t> stop_ids = model.EosTokenIds();
  const size_t num_eos = stop_ids.size();
  stop_ids.insert(stop_ids.end(), params.stop_ids.begin(), params.stop_ids.end());

  GenerationOutput out;
  out.tokens.resize(batch);
  out.logprobs.resize(batch);
  out.finish_reasons.assign(batch, FinishReason::kLength);
  std::vector<bool> finished(batch, false);
  int64_t running = batch;

  // Prefill, then only the last position goes through lm_head.
  torch::Tensor logits =
      Prefill(model, input_ids, padded ? mask.slice(1, 0, prompt_length) : torch::Tensor(),
              params.share_prompt_prefill ? PromptOwners(prompts) : std::vector<int64_t>(), cache);
  for (int64_t step = 0; step < params.max_new_tokens; ++step) {
    auto [tokens, logprobs] = SelectNextTokens(logits, params, generators);
    // The one host sync per step: tokens and their logprobs together.
    torch::Tensor host =
        torch::stack({tokens.to(torch::kFloat64), logprobs.to(torch::kFloat64)}).cpu();
    auto values = host.accessor<double, 2>();
    for (int64_t b = 0; b < batch; ++b) {
      if (finished[b]) continue;
      const int64_t token = static_cast<int64_t>(values[0][b]);
      out.tokens[b].push_back(token);
      out.logprobs[b].push_back(static_cast<float>(values[1][b]));
      auto it = std::find(stop_ids.begin(), stop_ids.end(), token);
      if (it != stop_ids.end()) {
        finished[b] = true;
        out.finish_reasons[b] = static_cast<size_t>(it - stop_ids.begin()) < num_eos
                                    ? FinishReason::kEos
                                    : FinishReason::kStop;
        --running;
      }
    }
    if (running == 0 || step + 1 == params.max_new_tokens) break;
    if (abandoned && abandoned()) {
      return absl::CancelledError(absl::StrCat("generation abandoned by its caller after ",
                                               step + 1, " of ", params.max_new_tokens, " steps"));
    }
    // Finished rows keep being fed (their outputs are ignored) so shapes stay fixed.
    const int64_t length = prompt_length + step + 1;
    const torch::Tensor hidden = model.ForwardHidden(
        tokens.view({batch, 1}), padded ? mask.slice(1, 0, length) : torch::Tensor(), {}, &cache);
    logits = model.Logits(hidden.select(1, -1));
  }
  return out;
}

}  // namespace

absl::StatusOr<GenerationOutput> Generate(CausalLm& model,
                                          std::span<const std::vector<int64_t>> prompts,
                                          const SamplingParams& params,
                                          std::span<const uint64_t> seeds,
                                          const std::function<bool()>& abandoned) {
  if (absl::Status s = ValidateRequest(model.config(), prompts, params, seeds); !s.ok()) {
    return s;
  }
  return CatchTorchErrors("generate", [&]() -> absl::StatusOr<GenerationOutput> {
    c10::InferenceMode inference_mode;
    int64_t prompt_length = 0;
    for (const auto& prompt : prompts) {
      prompt_length = std::max<int64_t>(prompt_length, static_cast<int64_t>(prompt.size()));
    }
    absl::StatusOr<KvCache> cache =
        KvCache::Create(model.config(), static_cast<int64_t>(prompts.size()),
                        prompt_length + params.max_new_tokens, model.dtype(), model.device());
    if (!cache.ok()) return cache.status();
    return RunGeneration(model, prompts, params, seeds, *cache, abandoned);
  });
}

}  // namespace rlhf::model
