#include "common/serving/reward/scorer.h"

#include <cmath>
#include <cstdlib>
#include <mutex>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/model/loader.h"
#include "common/rpc/tensor_codec.h"
#include "common/server/sequence_batch.h"
#include "common/status/torch_status.h"

namespace rlhf::reward {
namespace {

bool HasTokens(const v1::ScoreRequest& request) {
  return request.batch().prompts().offsets_size() > 0 ||
         request.batch().responses().offsets_size() > 0;
}

// The response texts, checked to be one per sequence of the batch when one is given.
absl::StatusOr<int64_t> TextCount(const v1::ScoreRequest& request) {
  const int64_t texts = request.response_texts_size();
  if (texts == 0) return absl::InvalidArgumentError("response_texts is empty");
  if (HasTokens(request)) {
    auto responses = rpc::TokensFromProto(request.batch().responses());
    if (!responses.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch.responses: ", responses.status().message()));
    }
    if (static_cast<int64_t>(responses->size()) != texts) {
      return absl::InvalidArgumentError(absl::StrCat("batch has ", responses->size(),
                                                     " responses but ", texts, " response_texts"));
    }
  }
  return texts;
}

class ModelScorer final : public Scorer {
 public:
  explicit ModelScorer(std::shared_ptr<model::SequenceClassifier> model)
      : model_(std::move(model)) {
    model_->eval();
  }

  std::string name() const override { return "model"; }

  absl::StatusOr<std::vector<float>> Score(const v1::ScoreRequest& request) override {
    auto padded = server::PadSequenceBatch(request.batch(), model_->config());
    if (!padded.ok()) return padded.status();
    return CatchTorchErrors("reward model", [&]() -> absl::StatusOr<std::vector<float>> {
      torch::InferenceMode inference;
      std::lock_guard<std::mutex> lock(forward_mutex_);
      const torch::Device device = model_->device();
      auto scores = model_->Score(padded->input_ids.to(device), padded->attention_mask.to(device));
      if (!scores.ok()) return scores.status();
      const torch::Tensor first =
          scores->select(1, 0).to(torch::kCPU, torch::kFloat32).contiguous();
      return std::vector<float>(first.data_ptr<float>(), first.data_ptr<float>() + first.numel());
    });
  }

 private:
  std::shared_ptr<model::SequenceClassifier> model_;
  std::mutex forward_mutex_;
};

class ExactMatchScorer final : public Scorer {
 public:
  std::string name() const override { return "exact_match"; }

  absl::StatusOr<std::vector<float>> Score(const v1::ScoreRequest& request) override {
    auto count = TextCount(request);
    if (!count.ok()) return count.status();
    if (request.references_size() != *count) {
      return absl::InvalidArgumentError(
          absl::StrCat("exact_match needs one reference per "
                       "response: got ",
                       request.references_size(), " for ", *count));
    }
    std::vector<float> scores;
    scores.reserve(*count);
    for (int64_t i = 0; i < *count; ++i) {
      const bool equal = absl::StripAsciiWhitespace(request.response_texts(i)) ==
                         absl::StripAsciiWhitespace(request.references(i));
      scores.push_back(equal ? 1.0f : 0.0f);
    }
    return scores;
  }
};

class RegexScorer final : public Scorer {
 public:
  explicit RegexScorer(pcre2_code* code) : code_(code) {}
  ~RegexScorer() override { pcre2_code_free(code_); }

  std::string name() const override { return "regex"; }

  absl::StatusOr<std::vector<float>> Score(const v1::ScoreRequest& request) override {
    auto count = TextCount(request);
    if (!count.ok()) return count.status();
    // Match data per call: a compiled pattern is shareable across threads, match data
    // is not (pcre2api: "Multithreading").
    pcre2_match_data* match = pcre2_match_data_create_from_pattern(code_, nullptr);
    if (match == nullptr) return absl::ResourceExhaustedError("regex: out of memory");
    std::vector<float> scores;
    absl::Status status;
    for (int64_t i = 0; i < *count && status.ok(); ++i) {
      const std::string& text = request.response_texts(i);
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0,
                                 0, match, nullptr);
      if (rc >= 0) {
        scores.push_back(1.0f);
      } else if (rc == PCRE2_ERROR_NOMATCH) {
        scores.push_back(0.0f);
      } else {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof(message));
        status = absl::InvalidArgumentError(absl::StrCat(
            "regex on response_texts[", i, "]: ", reinterpret_cast<const char*>(message)));
      }
    }
    pcre2_match_data_free(match);
    if (!status.ok()) return status;
    return scores;
  }

 private:
  pcre2_code* code_;
};

class LengthScorer final : public Scorer {
 public:
  explicit LengthScorer(int64_t target) : target_(target) {}

  std::string name() const override { return "length"; }

  absl::StatusOr<std::vector<float>> Score(const v1::ScoreRequest& request) override {
    std::vector<int64_t> lengths;
    if (HasTokens(request)) {
      auto responses = rpc::TokensFromProto(request.batch().responses());
      if (!responses.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("batch.responses: ", responses.status().message()));
      }
      for (const auto& response : *responses) lengths.push_back(response.size());
    } else {
      for (const auto& text : request.response_texts()) lengths.push_back(text.size());
    }
    if (lengths.empty()) {
      return absl::InvalidArgumentError("length scorer needs batch.responses or response_texts");
    }
    std::vector<float> scores;
    for (int64_t length : lengths) {
      scores.push_back(-static_cast<float>(std::llabs(length - target_)) /
                       static_cast<float>(target_));
    }
    return scores;
  }

 private:
  int64_t target_;
};

}  // namespace

std::unique_ptr<Scorer> MakeModelScorer(std::shared_ptr<model::SequenceClassifier> model) {
  return std::make_unique<ModelScorer>(std::move(model));
}

std::unique_ptr<Scorer> MakeExactMatchScorer() { return std::make_unique<ExactMatchScorer>(); }

absl::StatusOr<std::unique_ptr<Scorer>> MakeRegexScorer(const std::string& pattern) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return absl::InvalidArgumentError(absl::StrCat("regex '", pattern, "' at offset ", offset, ": ",
                                                   reinterpret_cast<const char*>(message)));
  }
  return std::unique_ptr<Scorer>(std::make_unique<RegexScorer>(code));
}

absl::StatusOr<std::unique_ptr<Scorer>> MakeLengthScorer(int64_t target_length) {
  if (target_length <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("length scorer target must be positive, got ", target_length));
  }
  return std::unique_ptr<Scorer>(std::make_unique<LengthScorer>(target_length));
}

namespace {

// A verifier's 1/0 mapped to the job's match_reward / mismatch_reward.
class AffineScorer : public Scorer {
 public:
  AffineScorer(std::unique_ptr<Scorer> inner, double match, double mismatch)
      : inner_(std::move(inner)), match_(match), mismatch_(mismatch) {}
  absl::StatusOr<std::vector<float>> Score(const v1::ScoreRequest& request) override {
    auto scores = inner_->Score(request);
    if (!scores.ok()) return scores;
    for (float& s : *scores) s = static_cast<float>(mismatch_ + s * (match_ - mismatch_));
    return scores;
  }
  std::string name() const override { return inner_->name(); }

 private:
  std::unique_ptr<Scorer> inner_;
  double match_, mismatch_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Scorer>> MakeScorer(const v1::RewardSpec& spec,
                                                   const std::string& model_dir,
                                                   const model::LoadOptions& load) {
  const std::string& kind = spec.kind();
  if (kind == "model" || kind.empty()) {
    if (model_dir.empty()) {
      return absl::InvalidArgumentError("reward.kind \"model\" needs a reward model directory");
    }
    auto model = model::LoadSequenceClassifier(model_dir, load);
    if (!model.ok()) return model.status();
    return MakeModelScorer(*model);
  }
  if (kind == "length") return MakeLengthScorer(spec.target_length());
  std::unique_ptr<Scorer> verifier;
  if (kind == "exact_match") {
    verifier = MakeExactMatchScorer();
  } else if (kind == "regex") {
    if (spec.pattern().empty()) {
      return absl::InvalidArgumentError("reward.pattern is required for reward.kind \"regex\"");
    }
    auto regex = MakeRegexScorer(spec.pattern());
    if (!regex.ok()) return regex.status();
    verifier = std::move(*regex);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "reward.kind must be model, exact_match, regex or length; got \"", kind, "\""));
  }
  return std::make_unique<AffineScorer>(std::move(verifier), spec.match_reward(),
                                        spec.mismatch_reward());
}

}  // namespace rlhf::reward
