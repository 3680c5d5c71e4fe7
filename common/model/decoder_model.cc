#include "common/model/decoder_model.h"

#include "absl/strings/str_cat.h"
#include "common/status/torch_status.h"

namespace rlhf::model {

DecoderModel::DecoderModel(ModelConfig config) : config_(std::move(config)) {
  decoder_ = register_module(std::string(config_.BackbonePrefix()), MakeDecoder(config_));
}

torch::Device DecoderModel::device() const { return parameters().front().device(); }

torch::ScalarType DecoderModel::dtype() const { return parameters().front().scalar_type(); }

torch::Tensor DecoderModel::ForwardHidden(const torch::Tensor& input_ids,
                                          const torch::Tensor& attention_mask,
                                          const torch::Tensor& position_ids, KvCache* cache) {
  const torch::Device dev = device();
  AttentionContext context = BuildAttentionContext(config_, input_ids.size(0), input_ids.size(1),
                                                   attention_mask, position_ids, cache, dev);
  return decoder_->Forward(input_ids.to(dev), context);
}

absl::StatusOr<torch::Tensor> DecoderModel::HiddenStates(const torch::Tensor& input_ids,
                                                         const torch::Tensor& attention_mask,
                                                         KvCache* cache) {
  const int64_t cached = cache != nullptr ? cache->length() : 0;
  if (absl::Status s = ValidateInputs(config_, input_ids, attention_mask, cached); !s.ok()) {
    return s;
  }
  return CatchTorchErrors("forward", [&]() -> absl::StatusOr<torch::Tensor> {
    return ForwardHidden(input_ids, attention_mask, {}, cache);
  });
}

void DecoderModel::InitWeights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  const double std = config_.initializer_range;
  for (auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    torch::Tensor& param = item.value();
    const bool is_norm = name.find("norm") != std::string::npos ||
                         name.find(".ln_") != std::string::npos ||
                         name.find("ln_f.") != std::string::npos;
    torch::Tensor value;
    if (param.dim() >= 2) {
      value = at::normal(0.0, std, param.sizes(), generator, torch::kFloat32);
    } else if (is_norm && name.ends_with(".weight")) {
      value = torch::ones(param.sizes());
    } else {
      value = torch::zeros(param.sizes());
    }
    param.copy_(value);
  }
}

absl::Status ValidateInputs(const ModelConfig& config, const torch::Tensor& input_ids,
                            const torch::Tensor& attention_mask, int64_t cached_tokens) {
  if (!input_ids.defined() || input_ids.dim() != 2 || input_ids.numel() == 0) {
    return absl::InvalidArgumentError("input_ids must be a non-empty [batch, tokens] tensor");
  }
  if (input_ids.scalar_type() != torch::kInt64) {
    return absl::InvalidArgumentError("input_ids must be int64");
  }
  const int64_t total = cached_tokens + input_ids.size(1);
  if (total > config.max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("sequence of ", total, " tokens is longer than the model's context of ",
                     config.max_position_embeddings, " (max_position_embeddings)"));
  }
  const auto [min_id, max_id] = torch::aminmax(input_ids);
  if (min_id.item<int64_t>() < 0 || max_id.item<int64_t>() >= config.vocab_size) {
    return absl::InvalidArgumentError(absl::StrCat("token id out of range [0, ", config.vocab_size,
                                                   "): found ", min_id.item<int64_t>(), "..",
                                                   max_id.item<int64_t>()));
  }
  if (attention_mask.defined() &&
      (attention_mask.dim() != 2 || attention_mask.size(0) != input_ids.size(0) ||
       attention_mask.size(1) != total)) {
    return absl::InvalidArgumentError(
        absl::StrCat("attention_mask must have shape [", input_ids.size(0), ", ", total, "]"));
  }
  return absl::OkStatus();
}

}  // namespace rlhf::model
