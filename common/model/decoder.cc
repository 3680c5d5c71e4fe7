#include "common/model/decoder.h"

#include "common/model/gpt2.h"
#include "common/model/llama.h"

namespace rlhf::model {

std::shared_ptr<DecoderImpl> MakeDecoder(const ModelConfig& config) {
  if (config.family == ModelFamily::kGpt2) return std::make_shared<Gpt2ModelImpl>(config);
  return std::make_shared<LlamaModelImpl>(config);
}

torch::Tensor Activate(const torch::Tensor& x, const std::string& name) {
  // activations.py: gelu_new (NewGELUActivation), gelu_fast and gelu_pytorch_tanh are all
  // the tanh approximation 0.5x(1 + tanh(sqrt(2/pi)(x + 0.044715x^3))); ATen's fused kernel
  // computes the same formula.
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") {
    return torch::gelu(x, "tanh");
  }
  if (name == "gelu") return torch::gelu(x);
  if (name == "relu") return torch::relu(x);
  if (name == "silu" || name == "swish") return torch::silu(x);
  TORCH_CHECK_VALUE(false, "unsupported activation \"", name, "\"");
}

}  // namespace rlhf::model
