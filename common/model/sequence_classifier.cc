#include "common/model/sequence_classifier.h"

#include "common/status/torch_status.h"

namespace rlhf::model {

SequenceClassifier::SequenceClassifier(ModelConfig config, bool init_weights)
    : DecoderModel(std::move(config)) {
  TORCH_CHECK_VALUE(config_.num_labels > 0, "num_labels must be positive");
  score_ = register_module(
      "score", torch::nn::Linear(
                   torch::nn::LinearOptions(config_.hidden_size, config_.num_labels).bias(false)));
  if (init_weights) InitWeights(0);
}

torch::Tensor SequenceClassifier::ScoreUnchecked(const torch::Tensor& input_ids,
                                                 const torch::Tensor& attention_mask) {
  const torch::Device dev = device();
  torch::Tensor mask = attention_mask.defined() ? attention_mask.to(dev) : attention_mask;
  torch::Tensor hidden = ForwardHidden(input_ids, mask, {}, nullptr);
  const int64_t batch = hidden.size(0);
  const int64_t tokens = hidden.size(1);
  torch::Tensor last;
  if (mask.defined()) {
    // (token_indices * non_pad_mask).argmax(-1), with the attention mask as non_pad_mask.
    torch::Tensor indices = torch::arange(tokens, torch::TensorOptions().device(dev));
    last = (indices * mask.to(torch::kInt64)).argmax(-1);
  } else {
    last =
        torch::full({batch}, tokens - 1, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  }
  torch::Tensor pooled =
      hidden.index({torch::arange(batch, torch::TensorOptions().device(dev)), last});
  return score_(pooled);
}

absl::StatusOr<torch::Tensor> SequenceClassifier::Score(const torch::Tensor& input_ids,
                                                        const torch::Tensor& attention_mask) {
  if (absl::Status s = ValidateInputs(config_, input_ids, attention_mask, 0); !s.ok()) return s;
  return CatchTorchErrors("sequence classification", [&]() -> absl::StatusOr<torch::Tensor> {
    return ScoreUnchecked(input_ids, attention_mask);
  });
}

}  // namespace rlhf::model
