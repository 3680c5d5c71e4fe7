#include "services/cli/best_of_n_command.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/cli/flags.h"
#include "common/io/atomic_file.h"
#include "common/jobs/dataset.h"
#include "common/jobs/tokenized_data.h"
#include "common/model/device_flags.h"
#include "common/model/generation.h"
#include "common/model/loader.h"
#include "common/rpc/tensor_codec.h"
#include "common/serving/reward/scorer.h"
#include "common/tokenizer/tokenizer.h"
#include "services/cli/job_events.h"
#include "services/cli/sampling_flags.h"

namespace rlhf::cli {
namespace {

int Fail(const absl::Status& status) {
  std::cerr << "rlhf best-of-n: error: " << status.message() << "\n";
  return status.code() == absl::StatusCode::kInvalidArgument ||
                 status.code() == absl::StatusCode::kNotFound
             ? 2
             : 1;
}

struct Sample {
  std::string completion;
  float score = 0;
};

// The highest-scoring of one prompt's samples (the first of equals); `samples` is not empty.
const Sample& Best(const std::vector<Sample>& samples) {
  return *std::max_element(samples.begin(), samples.end(),
                           [](const Sample& a, const Sample& b) { return a.score < b.score; });
}

// Which of one prompt's samples are kept: the best, or with a threshold every one scoring
// at least it.
std::vector<const Sample*> Keep(const std::vector<Sample>& samples,
                                const std::optional<double>& threshold) {
  if (!threshold) return {&Best(samples)};
  std::vector<const Sample*> kept;
  for (const Sample& s : samples) {
    if (s.score >= *threshold) kept.push_back(&s);
  }
  return kept;
}

}  // namespace

int RunBestOfN(const std::vector<std::string>& args) {
  std::string model_dir, prompts_path, out_path, reward_kind, reward_model, pattern;
  int64_t n = 4, batch_prompts = 8, target_length = 64;
  double threshold = std::numeric_limits<double>::quiet_NaN();
  SamplingFlags sampling;
  uint64_t seed = 0;
  FlagSet flags(
      "rlhf best-of-n",
      "Rejection sampling: samples --n completions of every prompt in --prompts (JSONL,\n"
      "{\"prompt\"} and an optional \"reference\") from --model, scores them with --reward\n"
      "(a reward model, or the exact_match / regex / length verifiers), and writes the best\n"
      "of each prompt (or every one scoring >= --threshold) to --out as a TRL\n"
      "prompt-completion dataset ({\"prompt\", \"completion\", \"score\"} lines) for an sft job.");
  flags.String("model", &model_dir, "policy model directory (Hugging Face layout)", true);
  flags.String("prompts", &prompts_path, "JSONL file of {\"prompt\"} lines", true);
  flags.String("out", &out_path, "JSONL file to write (replaced atomically)", true);
  flags.Int("n", &n, "completions sampled per prompt");
  flags.String("reward", &reward_kind,
               "model | exact_match | regex | length (default: model with --reward-model)");
  flags.String("reward-model", &reward_model, "sequence-classification reward model directory");
  flags.String("pattern", &pattern, "regex reward: PCRE2 pattern a good response matches");
  flags.Int("target-length", &target_length, "length reward: target response tokens");
  flags.Float("threshold", &threshold,
              "keep every sample scoring >= this; nan: the best per prompt");
  sampling.Register(flags);
  flags.UInt("seed", &seed, "sampling seed: completion i of the file uses seed + i");
  flags.Int("batch-prompts", &batch_prompts, "prompts generated together (x --n rows)");
  model::DeviceFlags device_flags;
  device_flags.Register(flags);
  if (int exit = ParseFlags(flags, args, "best-of-n", /*positional=*/0); exit >= 0) return exit;
  if (n < 1 || n > 1024) return Fail(absl::InvalidArgumentError("--n must be in [1, 1024]"));
  if (batch_prompts < 1 || batch_prompts * n > 4096) {
    return Fail(absl::InvalidArgumentError("--batch-prompts x --n must be in [1, 4096]"));
  }
  if (!(sampling.temperature > 0)) {
    return Fail(absl::InvalidArgumentError("--temperature must be > 0 (best-of-n samples)"));
  }
  if (reward_kind.empty()) {
    if (reward_model.empty()) {
      return Fail(absl::InvalidArgumentError(
          "--reward is required: model (with --reward-model), exact_match, regex or length"));
    }
    reward_kind = "model";
  }
  std::optional<double> keep_at_least;
  if (!std::isnan(threshold)) keep_at_least = threshold;

  auto params = sampling.Params();
  if (!params.ok()) return Fail(params.status());
  v1::RewardSpec reward;
  reward.set_kind(reward_kind);
  reward.set_pattern(pattern);
  reward.set_target_length(target_length);
  reward.set_match_reward(1.0);
  reward.set_mismatch_reward(0.0);

  auto examples = jobs::ReadJsonlDataset(prompts_path, jobs::DatasetFormat::kPromptOnly);
  if (!examples.ok()) return Fail(examples.status());  // an empty file included
  auto load = device_flags.Resolve(model_dir);
  if (!load.ok()) return Fail(load.status());
  auto tokenizer = tokenizer::Tokenizer::FromDirectory(model_dir);
  if (!tokenizer.ok()) return Fail(tokenizer.status());
  auto policy = model::LoadCausalLm(model_dir, *load);
  if (!policy.ok()) return Fail(policy.status());
  auto scorer = reward::MakeScorer(reward, reward_model, *load);
  if (!scorer.ok()) return Fail(scorer.status());

  // Conversational prompts are rendered with the model's chat template, as jobs do.
  jobs::TokenizeOptions tokenize;
  tokenize.max_prompt_tokens = std::numeric_limits<int32_t>::max();
  tokenize.max_response_tokens = 1;
  tokenize.path = prompts_path;
  auto tokenized =
      jobs::TokenizeExamples(**tokenizer, *examples, jobs::DatasetFormat::kPromptOnly, tokenize);
  if (!tokenized.ok()) return Fail(tokenized.status());

  std::string out;
  int64_t kept = 0, row = 0;
  double best_sum = 0;
  for (size_t first = 0; first < examples->size(); first += batch_prompts) {
    const size_t last = std::min(examples->size(), first + static_cast<size_t>(batch_prompts));
    std::vector<std::vector<int64_t>> prompts;
    std::vector<uint64_t> seeds;
    v1::ScoreRequest request;
    for (size_t e = first; e < last; ++e) {
      for (int64_t k = 0; k < n; ++k) {
        prompts.push_back((*tokenized)[e].prompt);
        seeds.push_back(seed + static_cast<uint64_t>(row++));
      }
    }
    auto generated = model::Generate(**policy, prompts, *params, seeds);
    if (!generated.ok()) return Fail(generated.status());
    rpc::TokensToProto(prompts, request.mutable_batch()->mutable_prompts());
    rpc::TokensToProto(generated->tokens, request.mutable_batch()->mutable_responses());
    std::vector<std::string> texts;
    for (size_t r = 0; r < prompts.size(); ++r) {
      const jobs::TokenizedExample& example = (*tokenized)[first + r / static_cast<size_t>(n)];
      auto text = (*tokenizer)->Decode(generated->tokens[r], /*skip_special_tokens=*/true);
      if (!text.ok()) return Fail(text.status());
      texts.push_back(*text);
      request.add_prompt_texts(example.prompt_text);
      request.add_response_texts(*text);
      request.add_references(example.reference);
    }
    *request.mutable_reward() = reward;
    auto scores = (*scorer)->Score(request);
    if (!scores.ok()) return Fail(scores.status());
    for (size_t e = first; e < last; ++e) {
      std::vector<Sample> samples;
      for (int64_t k = 0; k < n; ++k) {
        const size_t r = (e - first) * static_cast<size_t>(n) + static_cast<size_t>(k);
        samples.push_back({texts[r], (*scores)[r]});
      }
      best_sum += Best(samples).score;
      for (const Sample* s : Keep(samples, keep_at_least)) {
        // A conversational prompt keeps its messages; the answer becomes an assistant turn.
        const jobs::Example& example = (*examples)[e];
        nlohmann::ordered_json line;
        if (example.conversation != nullptr) {
          line["prompt"] = (*example.conversation)["prompt"];
          line["completion"] =
              nlohmann::ordered_json::array({{{"role", "assistant"}, {"content", s->completion}}});
        } else {
          line["prompt"] = example.prompt;
          line["completion"] = s->completion;
        }
        line["score"] = s->score;
        absl::StrAppend(&out,
                        line.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace),
                        "\n");
        ++kept;
      }
    }
  }
  if (auto s = io::WriteFileAtomically(out_path, out); !s.ok()) return Fail(s);
  std::cout << "rlhf best-of-n: " << examples->size() << " prompts x " << n << " samples, kept "
            << kept << " to " << out_path << " (mean best score "
            << best_sum / static_cast<double>(examples->size()) << ")\n";
  return 0;
}

}  // namespace rlhf::cli
