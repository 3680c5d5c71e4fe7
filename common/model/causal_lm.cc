#include "common/model/causal_lm.h"

#include "common/model/dense.h"
#include "common/status/torch_status.h"

namespace rlhf::model {

CausalLm::CausalLm(ModelConfig config, bool init_weights) : DecoderModel(std::move(config)) {
  if (!config_.tie_word_embeddings) {
    lm_head_ = register_module(
        "lm_head",
        torch::nn::Linear(
            torch::nn::LinearOptions(config_.hidden_size, config_.vocab_size).bias(false)));
  }
  if (init_weights) InitWeights(0);
}

torch::Tensor CausalLm::LmHeadWeight() {
  return lm_head_.is_empty() ? decoder().EmbeddingWeight() : lm_head_->weight;
}

torch::Tensor CausalLm::Logits(const torch::Tensor& hidden) {
  return Linear(hidden, LmHeadWeight());
}

absl::StatusOr<torch::Tensor> CausalLm::Forward(const torch::Tensor& input_ids,
                                                const torch::Tensor& attention_mask,
                                                KvCache* cache) {
  absl::StatusOr<torch::Tensor> hidden = HiddenStates(input_ids, attention_mask, cache);
  if (!hidden.ok()) return hidden.status();
  return CatchTorchErrors("lm_head",
                          [&]() -> absl::StatusOr<torch::Tensor> { return Logits(*hidden); });
}

void CausalLm::AddValueHead(uint64_t seed) {
  if (has_value_head()) return;
  const torch::Device dev = device();
  const torch::ScalarType type = dtype();
  value_head_ = register_module("v_head", ValueHead(config_.hidden_size));
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  value_head_->summary()->weight.copy_(at::normal(
      0.0, config_.initializer_range, value_head_->summary()->weight.sizes(), generator));
  value_head_->summary()->bias.zero_();
  value_head_->to(dev, type);
}

torch::Tensor CausalLm::Values(const torch::Tensor& hidden) {
  TORCH_CHECK(has_value_head(), "this model has no value head");
  return value_head_(hidden);
}

std::vector<int64_t> CausalLm::EosTokenIds() const {
  const nlohmann::json& gen = generation_config();
  if (gen.is_object() && gen.contains("eos_token_id")) {
    const nlohmann::json& eos = gen["eos_token_id"];
    if (eos.is_number_integer()) return {eos.get<int64_t>()};
    if (eos.is_array()) {
      std::vector<int64_t> ids;
      for (const auto& id : eos) {
        if (id.is_number_integer()) ids.push_back(id.get<int64_t>());
      }
      return ids;
    }
  }
  return config_.eos_token_ids;
}

}  // namespace rlhf::model
