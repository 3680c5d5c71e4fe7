#pragma once

// CausalLm: GPT2LMHeadModel / LlamaForCausalLM / Qwen2ForCausalLM / MistralForCausalLM,
// optionally with TRL's value head (AutoModelForCausalLMWithValueHead) for PPO's critic.
// With tie_word_embeddings the lm_head has no parameter of its own: it multiplies by the
// token embedding, and checkpoints store the tensor once (as transformers does).

#include <cstdint>
#include <vector>

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "common/model/decoder_model.h"
#include "common/model/value_head.h"

namespace rlhf::model {

class CausalLm : public DecoderModel {
 public:
  // A randomly initialised model (InitWeights(0)). The loader passes init_weights=false
  // since it overwrites every weight anyway (halves load time).
  explicit CausalLm(ModelConfig config, bool init_weights = true);

  // The [vocab, hidden] matrix logits are computed with (the embedding when tied).
  torch::Tensor LmHeadWeight();

  // hidden [..., hidden] -> logits [..., vocab]. Throws c10::Error.
  torch::Tensor Logits(const torch::Tensor& hidden);

  // Full forward: logits [B, T, vocab] (mask and cache as in DecoderModel::ForwardHidden).
  // Materialises B x T x V: for training use ComputeTokenLogprobs instead.
  absl::StatusOr<torch::Tensor> Forward(const torch::Tensor& input_ids,
                                        const torch::Tensor& attention_mask = {},
                                        KvCache* cache = nullptr);

  // Attaches a value head named v_head (N(0, initializer_range) weights from `seed`, zero
  // bias) unless one exists.
  void AddValueHead(uint64_t seed);
  bool has_value_head() const { return !value_head_.is_empty(); }
  // values [B, T] from final hidden states; requires has_value_head(). Throws c10::Error.
  torch::Tensor Values(const torch::Tensor& hidden);

  // Token ids that end generation: generation_config.json's eos_token_id if present, else
  // config.json's.
  std::vector<int64_t> EosTokenIds() const;

 private:
  torch::nn::Linear lm_head_{nullptr};  // null when tied
  ValueHead value_head_{nullptr};
};

}  // namespace rlhf::model
