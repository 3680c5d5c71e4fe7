#pragma once
// Reward scorers, without gRPC: a neural reward model (a *ForSequenceClassification
// checkpoint) or a built-in verifier over decoded text. `rlhf local` can call them
// in-process; the service only translates. Every implementation is thread-safe.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/model/loader.h"
#include "common/model/sequence_classifier.h"
#include "rlhf/v1/job.pb.h"
#include "rlhf/v1/scoring.pb.h"

namespace rlhf::reward {

class Scorer {
 public:
  virtual ~Scorer() = default;
  // One score per sequence of the request. InvalidArgument names what is missing or
  // malformed (offsets, counts, token ids, texts).
  virtual absl::StatusOr<std::vector<float>> Score(const v1::ScoreRequest& request) = 0;
  virtual std::string name() const = 0;
};

// Score of prompt + response read at the last real token (label 0 of the head).
std::unique_ptr<Scorer> MakeModelScorer(std::shared_ptr<model::SequenceClassifier> model);

// 1 when the trimmed response text equals the trimmed reference answer, else 0.
// Needs response_texts and references, one per sequence.
std::unique_ptr<Scorer> MakeExactMatchScorer();

// 1 when the response text contains a match of `pattern` (PCRE2 syntax), else 0.
// InvalidArgument when the pattern does not compile, naming the offset.
absl::StatusOr<std::unique_ptr<Scorer>> MakeRegexScorer(const std::string& pattern);

// -|len - target| / target with len the response's token count (batch.responses), or its
// byte count when the request carries only response_texts. target must be positive.
absl::StatusOr<std::unique_ptr<Scorer>> MakeLengthScorer(int64_t target_length);

// The scorer a job's RewardSpec (defaults applied) asks for; the one place a reward spec
// becomes a scorer, for `rlhf local`, rlhf-reward's flags and per-request specs alike.
//   model:                 LoadSequenceClassifier(model_dir, load) (InvalidArgument if
//                          model_dir is empty);
//   exact_match, regex:    the verifier's 1/0 mapped to match_reward / mismatch_reward;
//   length:                MakeLengthScorer(target_length).
absl::StatusOr<std::unique_ptr<Scorer>> MakeScorer(const v1::RewardSpec& spec,
                                                   const std::string& model_dir,
                                                   const model::LoadOptions& load = {});

}  // namespace rlhf::reward
