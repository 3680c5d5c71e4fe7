#include "services/cli/eval_command.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <utility>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/cli/flags.h"
#include "common/io/atomic_file.h"
#include "common/jobs/dataset.h"
#include "common/jobs/tokenized_data.h"
#include "common/model/device_flags.h"
#include "common/model/generation.h"
#include "common/model/loader.h"
#include "common/model/sampling.h"
#include "common/rpc/tensor_codec.h"
#include "common/serving/reference/reference_core.h"
#include "common/serving/reward/scorer.h"
#include "common/tokenizer/tokenizer.h"

namespace rlhf::cli {
namespace {

using Rows = std::vector<std::vector<int64_t>>;

int Fail(const absl::Status& status) {
  std::cerr << "rlhf eval: error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

absl::Status Annotate(const absl::Status& status, const std::string& what) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

struct EvalFlags {
  std::string policy, reference, reward_model, pairs, prompts, samples_out, output;
  int64_t samples_per_prompt = 1, max_prompt_tokens = 512, max_response_tokens = 256;
  int64_t batch_size = 32, top_k = 0;
  double temperature = 1.0, top_p = 1.0, beta = 0.1;
  uint64_t seed = 0;
  model::DeviceFlags device;  // each model: --dtype, else its checkpoint's dtype on CUDA
};

// Rows [begin, end) of prompts/responses as the services' wire batch.
v1::SequenceBatch Slice(const Rows& prompts, const Rows& responses, size_t begin, size_t end) {
  v1::SequenceBatch batch;
  rpc::TokensToProto(Rows(prompts.begin() + begin, prompts.begin() + end), batch.mutable_prompts());
  rpc::TokensToProto(Rows(responses.begin() + begin, responses.begin() + end),
                     batch.mutable_responses());
  return batch;
}

// Sum over each row's response tokens of log p(token | everything before it).
absl::StatusOr<std::vector<double>> SequenceLogprobs(reference::ReferenceCore& core,
                                                     const Rows& prompts, const Rows& responses,
                                                     float temperature, int64_t batch_size) {
  std::vector<double> sums;
  for (size_t begin = 0; begin < prompts.size(); begin += batch_size) {
    const size_t end = std::min(prompts.size(), begin + static_cast<size_t>(batch_size));
    auto flat = core.LogProbs(Slice(prompts, responses, begin, end), temperature);
    if (!flat.ok()) return flat.status();
    const torch::Tensor values = flat->to(torch::kFloat64).contiguous();
    const double* data = values.data_ptr<double>();
    int64_t offset = 0;
    for (size_t row = begin; row < end; ++row) {
      double sum = 0;
      for (size_t t = 0; t < responses[row].size(); ++t) sum += data[offset++];
      sums.push_back(sum);
    }
  }
  return sums;
}

absl::StatusOr<std::vector<double>> RewardScores(reward::Scorer& scorer, const Rows& prompts,
                                                 const Rows& responses, int64_t batch_size) {
  std::vector<double> scores;
  for (size_t begin = 0; begin < prompts.size(); begin += batch_size) {
    const size_t end = std::min(prompts.size(), begin + static_cast<size_t>(batch_size));
    v1::ScoreRequest request;
    *request.mutable_batch() = Slice(prompts, responses, begin, end);
    auto batch_scores = scorer.Score(request);
    if (!batch_scores.ok()) return batch_scores.status();
    scores.insert(scores.end(), batch_scores->begin(), batch_scores->end());
  }
  return scores;
}

// Fraction of positive margins; an exact tie counts half (so two identical models, whose
// implicit rewards are all 0, score 50%, not 0%).
double Accuracy(const std::vector<double>& margins) {
  double hits = 0;
  for (double m : margins) hits += m > 0 ? 1.0 : (m == 0 ? 0.5 : 0.0);
  return margins.empty() ? 0.0 : hits / static_cast<double>(margins.size());
}

double Mean(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? 0.0 : sum / static_cast<double>(values.size());
}

double Std(const std::vector<double>& values) {
  if (values.size() < 2) return 0.0;
  const double mean = Mean(values);
  double sq = 0;
  for (double v : values) sq += (v - mean) * (v - mean);
  return std::sqrt(sq / static_cast<double>(values.size() - 1));
}

class Evaluation {
 public:
  explicit Evaluation(const EvalFlags& flags) : flags_(flags) {}

  absl::Status Load() {
    const std::string& tokenizer_dir = flags_.policy.empty() ? flags_.reward_model : flags_.policy;
    auto tokenizer = tokenizer::Tokenizer::FromDirectory(tokenizer_dir);
    if (!tokenizer.ok()) return Annotate(tokenizer.status(), tokenizer_dir);
    tokenizer_ = std::move(*tokenizer);
    if (!flags_.policy.empty()) {
      auto policy_options = flags_.device.Resolve(flags_.policy);
      if (!policy_options.ok()) return policy_options.status();
      auto policy = model::LoadCausalLm(flags_.policy, *policy_options);
      if (!policy.ok()) return Annotate(policy.status(), "--policy");
      policy_model_ = *policy;
      policy_ = std::make_unique<reference::ReferenceCore>(*policy);
    }
    if (!flags_.reference.empty()) {
      auto reference_options = flags_.device.Resolve(flags_.reference);
      if (!reference_options.ok()) return reference_options.status();
      auto reference = model::LoadCausalLm(flags_.reference, *reference_options);
      if (!reference.ok()) return Annotate(reference.status(), "--reference");
      reference_ = std::make_unique<reference::ReferenceCore>(*reference);
    }
    if (!flags_.reward_model.empty()) {
      auto reward_options = flags_.device.Resolve(flags_.reward_model);
      if (!reward_options.ok()) return reward_options.status();
      auto reward = model::LoadSequenceClassifier(flags_.reward_model, *reward_options);
      if (!reward.ok()) return Annotate(reward.status(), "--reward-model");
      scorer_ = reward::MakeModelScorer(*reward);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<jobs::TokenizedExample>> Read(const std::string& path,
                                                           jobs::DatasetFormat format) {
    auto examples = jobs::ReadJsonlDataset(path, format);
    if (!examples.ok()) return examples.status();
    jobs::TokenizeOptions options;
    options.max_prompt_tokens = flags_.max_prompt_tokens;
    options.max_response_tokens = flags_.max_response_tokens;
    options.path = path;
    return jobs::TokenizeExamples(*tokenizer_, *examples, format, options);
  }

  // Preference accuracy of the reward model and/or of the implicit reward
  // beta * (log pi(y|x) - log ref(y|x)) (DPO's), on --pairs.
  absl::Status Pairs() {
    auto pairs = Read(flags_.pairs, jobs::DatasetFormat::kPreference);
    if (!pairs.ok()) return pairs.status();
    Rows prompts, chosen, rejected;
    for (const auto& p : *pairs) {
      prompts.push_back(p.prompt);
      chosen.push_back(p.chosen);
      rejected.push_back(p.rejected);
    }
    Add("pairs", static_cast<double>(prompts.size()));
    if (scorer_) {
      auto c = RewardScores(*scorer_, prompts, chosen, flags_.batch_size);
      if (!c.ok()) return Annotate(c.status(), "reward model");
      auto r = RewardScores(*scorer_, prompts, rejected, flags_.batch_size);
      if (!r.ok()) return Annotate(r.status(), "reward model");
      std::vector<double> margins;
      for (size_t i = 0; i < c->size(); ++i) margins.push_back((*c)[i] - (*r)[i]);
      Add("reward_model_accuracy", Accuracy(margins));
      Add("reward_model_margin", Mean(margins));
    }
    if (policy_ && reference_) {
      std::vector<double> lp[2], ref[2];
      const Rows* sides[2] = {&chosen, &rejected};
      for (int side = 0; side < 2; ++side) {
        auto p = SequenceLogprobs(*policy_, prompts, *sides[side], 1.0f, flags_.batch_size);
        if (!p.ok()) return Annotate(p.status(), "policy");
        auto r = SequenceLogprobs(*reference_, prompts, *sides[side], 1.0f, flags_.batch_size);
        if (!r.ok()) return Annotate(r.status(), "reference");
        lp[side] = std::move(*p);
        ref[side] = std::move(*r);
      }
      std::vector<double> margins;
      for (size_t i = 0; i < prompts.size(); ++i) {
        margins.push_back(flags_.beta * ((lp[0][i] - ref[0][i]) - (lp[1][i] - ref[1][i])));
      }
      Add("implicit_reward_accuracy", Accuracy(margins));
      Add("implicit_reward_margin", Mean(margins));
    }
    return absl::OkStatus();
  }

  // Fresh samples from the policy on --prompts: length, reward-model score, KL to the
  // reference (sum over the response of log pi - log ref, PPO's k1 estimate).
  absl::Status Samples() {
    auto prompts = Read(flags_.prompts, jobs::DatasetFormat::kPromptOnly);
    if (!prompts.ok()) return prompts.status();
    model::SamplingParams params;
    params.max_new_tokens = flags_.max_response_tokens;
    params.temperature = static_cast<float>(flags_.temperature);
    params.greedy = flags_.temperature == 0.0;
    params.top_k = flags_.top_k;
    params.top_p = static_cast<float>(flags_.top_p);
    params.stop_ids = tokenizer_->eos_ids();
    Rows prompt_rows, responses;
    std::vector<const jobs::TokenizedExample*> sources;
    std::vector<bool> finished;
    for (const auto& p : *prompts) {
      for (int64_t s = 0; s < flags_.samples_per_prompt; ++s) {
        prompt_rows.push_back(p.prompt);
        sources.push_back(&p);
      }
    }
    for (size_t begin = 0; begin < prompt_rows.size(); begin += flags_.batch_size) {
      const size_t end = std::min(prompt_rows.size(), begin + flags_.batch_size);
      std::vector<uint64_t> seeds;
      for (size_t i = begin; i < end; ++i) seeds.push_back(flags_.seed + i);
      const Rows batch(prompt_rows.begin() + begin, prompt_rows.begin() + end);
      torch::InferenceMode guard;
      auto generated = model::Generate(*policy_model_, batch, params, seeds);
      if (!generated.ok()) return Annotate(generated.status(), "generate");
      for (size_t i = 0; i < generated->tokens.size(); ++i) {
        responses.push_back(generated->tokens[i]);
        finished.push_back(generated->finish_reasons[i] != model::FinishReason::kLength);
      }
    }
    std::vector<double> lengths, scores, kls;
    for (const auto& r : responses) lengths.push_back(static_cast<double>(r.size()));
    Add("samples", static_cast<double>(responses.size()));
    Add("response_length", Mean(lengths));
    Add("finished_fraction", Mean(std::vector<double>(finished.begin(), finished.end())));
    if (scorer_) {
      auto s = RewardScores(*scorer_, prompt_rows, responses, flags_.batch_size);
      if (!s.ok()) return Annotate(s.status(), "reward model");
      scores = std::move(*s);
      Add("score_mean", Mean(scores));
      Add("score_std", Std(scores));
    }
    if (reference_) {
      const float t = params.greedy ? 1.0f : params.temperature;
      auto p = SequenceLogprobs(*policy_, prompt_rows, responses, t, flags_.batch_size);
      if (!p.ok()) return Annotate(p.status(), "policy");
      auto r = SequenceLogprobs(*reference_, prompt_rows, responses, t, flags_.batch_size);
      if (!r.ok()) return Annotate(r.status(), "reference");
      for (size_t i = 0; i < p->size(); ++i) kls.push_back((*p)[i] - (*r)[i]);
      Add("kl_mean", Mean(kls));
    }
    if (!flags_.samples_out.empty()) {
      std::string text;
      for (size_t i = 0; i < responses.size(); ++i) {
        auto decoded = tokenizer_->Decode(responses[i], /*skip_special_tokens=*/true);
        if (!decoded.ok()) return Annotate(decoded.status(), "decode");
        nlohmann::json line = {{"prompt", sources[i]->prompt_text},
                               {"sample", static_cast<int64_t>(i) % flags_.samples_per_prompt},
                               {"response", *decoded},
                               {"tokens", responses[i].size()},
                               {"finished", static_cast<bool>(finished[i])}};
        if (!scores.empty()) line["score"] = scores[i];
        if (!kls.empty()) line["kl"] = kls[i];
        absl::StrAppend(&text, line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                        "\n");
      }
      if (auto s = io::WriteFileAtomically(flags_.samples_out, text); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status Report() {
    nlohmann::json json = nlohmann::json::object();
    for (const auto& [name, value] : measures_) {
      std::cout << std::left << std::setw(26) << name << value << "\n";
      json[name] = value;
    }
    if (flags_.output.empty()) return absl::OkStatus();
    return io::WriteFileAtomically(flags_.output, json.dump(2) + "\n");
  }

 private:
  void Add(const std::string& name, double value) { measures_.emplace_back(name, value); }

  const EvalFlags& flags_;
  std::unique_ptr<tokenizer::Tokenizer> tokenizer_;
  std::shared_ptr<model::CausalLm> policy_model_;
  std::unique_ptr<reference::ReferenceCore> policy_, reference_;
  std::unique_ptr<reward::Scorer> scorer_;
  std::vector<std::pair<std::string, double>> measures_;
};

absl::Status CheckFlags(const EvalFlags& f) {
  if (f.pairs.empty() && f.prompts.empty()) {
    return absl::InvalidArgumentError("give --pairs and/or --prompts (see --help)");
  }
  if (f.policy.empty() && f.reward_model.empty()) {
    return absl::InvalidArgumentError("give --policy and/or --reward-model");
  }
  if (!f.prompts.empty() && f.policy.empty()) {
    return absl::InvalidArgumentError("--prompts needs --policy (the model to sample from)");
  }
  if (!f.pairs.empty() && f.reward_model.empty() && (f.policy.empty() || f.reference.empty())) {
    return absl::InvalidArgumentError(
        "--pairs needs --reward-model, or --policy with --reference (implicit reward)");
  }
  if (!f.samples_out.empty() && f.prompts.empty()) {
    return absl::InvalidArgumentError("--samples-out needs --prompts");
  }
  if (f.samples_per_prompt < 1 || f.batch_size < 1 || f.max_prompt_tokens < 1 ||
      f.max_response_tokens < 1) {
    return absl::InvalidArgumentError(
        "--samples-per-prompt, --batch-size, --max-prompt-tokens and --max-response-tokens "
        "must be positive");
  }
  if (!std::isfinite(f.beta) || f.beta <= 0) {
    return absl::InvalidArgumentError("--beta must be positive");
  }
  model::SamplingParams sampling;
  sampling.max_new_tokens = f.max_response_tokens;
  sampling.temperature = static_cast<float>(f.temperature);
  sampling.top_k = f.top_k;
  sampling.top_p = static_cast<float>(f.top_p);
  return InTermsOfFlags(
      model::ValidateSamplingParams(sampling),
      {{"temperature", "--temperature"}, {"top_k", "--top-k"}, {"top_p", "--top-p"}});
}

}  // namespace

int RunEval(const std::vector<std::string>& args) {
  EvalFlags f;
  FlagSet flags(
      "rlhf eval",
      "Measures models on held-out data and prints one measure per line:\n"
      "  --pairs with --reward-model: reward_model_accuracy (chosen scored above rejected)\n"
      "  --pairs with --policy and --reference: implicit_reward_accuracy (DPO's reward\n"
      "      beta * (log pi - log ref) ranks chosen above rejected)\n"
      "  --prompts with --policy: fresh samples; score_mean with --reward-model, kl_mean\n"
      "      (sum over the response of log pi - log ref) with --reference\n"
      "Exact ties count half in accuracies. Tokenisation follows jobs (use the job's\n"
      "max token counts).\nusage: rlhf eval [flags]");
  flags.String("policy", &f.policy, "causal LM directory to evaluate (its tokenizer is used)");
  flags.String("reference", &f.reference, "frozen reference model directory");
  flags.String("reward-model", &f.reward_model,
               "reward model directory (*ForSequenceClassification)");
  flags.String("pairs", &f.pairs, "preference pairs JSONL (prompt, chosen, rejected)");
  flags.String("prompts", &f.prompts, "prompts JSONL to sample responses for");
  flags.Int("samples-per-prompt", &f.samples_per_prompt, "responses sampled per prompt");
  flags.Int("max-prompt-tokens", &f.max_prompt_tokens, "prompts keep their last N tokens");
  flags.Int("max-response-tokens", &f.max_response_tokens,
            "responses are cut to (pairs) or sampled up to (prompts) N tokens");
  flags.Float("temperature", &f.temperature, "sampling temperature; 0 = greedy");
  flags.Int("top-k", &f.top_k, "keep only the k most likely tokens; 0 = off");
  flags.Float("top-p", &f.top_p, "nucleus sampling mass; 1 = off");
  flags.UInt("seed", &f.seed, "sample i (prompt-major order) uses seed + i");
  flags.Float("beta", &f.beta, "DPO beta: scales implicit_reward_margin");
  flags.Int("batch-size", &f.batch_size, "sequences per forward");
  flags.String("samples-out", &f.samples_out,
               "write the samples as JSONL (prompt, response, score, kl, ...)");
  flags.String("output", &f.output, "also write the measures as a JSON object");
  f.device.Register(flags);
  if (auto status = flags.Parse(args); !status.ok()) return Fail(status);
  if (flags.help_requested()) {
    std::cout << flags.Usage();
    return 0;
  }
  if (!flags.positional().empty()) {
    return Fail(absl::InvalidArgumentError("unexpected argument '" + flags.positional()[0] + "'"));
  }
  if (auto s = CheckFlags(f); !s.ok()) return Fail(s);
  Evaluation eval(f);
  if (auto s = eval.Load(); !s.ok()) return Fail(s);
  if (!f.pairs.empty()) {
    if (auto s = eval.Pairs(); !s.ok()) return Fail(s);
  }
  if (!f.prompts.empty()) {
    if (auto s = eval.Samples(); !s.ok()) return Fail(s);
  }
  if (auto s = eval.Report(); !s.ok()) return Fail(s);
  return 0;
}

}  // namespace rlhf::cli
