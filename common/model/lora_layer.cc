#include "common/model/lora_layer.h"

#include <cmath>

#include "common/model/dense.h"

namespace rlhf::model {

void LoraLayer::AttachLora(int64_t rank, double scale, double dropout, at::Generator& generator) {
  TORCH_CHECK(rank >= 1, "LoRA rank must be >= 1, got ", rank);
  torch::NoGradGuard no_grad;
  const auto options = torch::TensorOptions().dtype(torch::kFloat32).device(base_weight().device());
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features()));
  lora_a_ = torch::empty({rank, in_features()}, torch::kFloat32)
                .uniform_(-bound, bound, generator)
                .to(options.device())
                .requires_grad_(true);
  lora_b_ = torch::zeros({out_features(), rank}, options).requires_grad_(true);
  lora_scale_ = scale;
  lora_dropout_ = dropout;
}

torch::Tensor LoraLayer::LoraDeltaWeight() const {
  TORCH_CHECK(has_lora(), "no LoRA adapter");
  torch::Tensor delta = torch::matmul(lora_b_, lora_a_) * lora_scale_;  // [out, in]
  if (fan_in_fan_out()) delta = delta.t();
  return delta.to(base_weight().scalar_type());
}

torch::Tensor LoraLayer::AddLora(const torch::Tensor& x, const torch::Tensor& y) const {
  if (!has_lora()) return y;
  torch::Tensor input = x.to(lora_a_.scalar_type());
  if (lora_dropout_ > 0 && is_training()) input = torch::dropout(input, lora_dropout_, true);
  torch::Tensor delta = torch::matmul(torch::matmul(input, lora_a_.t()), lora_b_.t()) * lora_scale_;
  return y + delta.to(y.scalar_type());
}

void LoraLayer::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(device, dtype, non_blocking);
  to(device, non_blocking);
}

void LoraLayer::to(torch::Dtype dtype, bool non_blocking) {
  torch::nn::Module::to(dtype, non_blocking);  // the adapter keeps float32
}

void LoraLayer::to(torch::Device device, bool non_blocking) {
  torch::nn::Module::to(device, non_blocking);
  if (!has_lora()) return;
  torch::NoGradGuard no_grad;
  lora_a_ = lora_a_.to(device, non_blocking).detach().requires_grad_(true);
  lora_b_ = lora_b_.to(device, non_blocking).detach().requires_grad_(true);
}

LinearLayerImpl::LinearLayerImpl(int64_t in_features, int64_t out_features, bool bias) {
  // torch.nn.Linear's initialisation (a loaded model overwrites it).
  torch::nn::Linear init(torch::nn::LinearOptions(in_features, out_features).bias(bias));
  weight_ = register_parameter("weight", init->weight.detach().clone());
  if (bias) bias_ = register_parameter("bias", init->bias.detach().clone());
}

torch::Tensor LinearLayerImpl::forward(const torch::Tensor& x) {
  return AddLora(x, Linear(x, weight_, bias_));
}

}  // namespace rlhf::model
