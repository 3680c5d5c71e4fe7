#pragma once

// SequenceClassifier: GPT2/Llama/Qwen2/MistralForSequenceClassification, the reward
// model's architecture: a bias-free Linear "score" [num_labels, hidden] applied to the
// final hidden state of each sequence's last real token.

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/model/decoder_model.h"

namespace rlhf::model {

class SequenceClassifier : public DecoderModel {
 public:
  // config.num_labels must be positive. Random weights (InitWeights(0)) unless
  // init_weights is false (the loader overwrites them).
  explicit SequenceClassifier(ModelConfig config, bool init_weights = true);

  int64_t num_labels() const { return config_.num_labels; }

  // Scores [B, num_labels] for input_ids [B, T] and attention_mask [B, T] (may be
  // undefined: no padding). The score is read at the last position whose attention_mask
  // is 1, which handles left and right padding alike. transformers instead takes the
  // rightmost token != pad_token_id (modeling_llama.py LlamaForSequenceClassification); the
  // two agree unless a real token equals pad_token_id (e.g. pad == eos and the text ends
  // with eos, where transformers scores the token before it). Autograd records the graph.
  // Throws c10::Error.
  torch::Tensor ScoreUnchecked(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

  // ScoreUnchecked with input checks, errors as Status.
  absl::StatusOr<torch::Tensor> Score(const torch::Tensor& input_ids,
                                      const torch::Tensor& attention_mask = {});

 private:
  torch::nn::Linear score_{nullptr};
};

}  // namespace rlhf::model
