#pragma once
// A dense layer that can carry a LoRA adapter (Hu et al. 2021), as PEFT 0.17's
// lora.Linear computes it: the base output plus scale * dropout(x) A^T B^T, with
// A [r, in] ~ U(-1/sqrt(in), 1/sqrt(in)) (kaiming_uniform, a = sqrt(5)), B [out, r] = 0,
// scale = alpha / r (alpha / sqrt(r) with rsLoRA). The adapter's tensors are not module
// parameters: the module's named parameters stay the checkpoint's (Hugging Face names),
// and the trainer and PEFT adapter files reach them through lora_a() / lora_b(). They keep
// float32 when the module moves to another dtype (a bf16 base trains a float32 adapter).

#include <cstdint>

#include <torch/torch.h>

namespace rlhf::model {

class LoraLayer : public torch::nn::Module {
 public:
  // Replaces any adapter. Throws c10::Error for rank < 1.
  void AttachLora(int64_t rank, double scale, double dropout, at::Generator& generator);
  bool has_lora() const { return lora_a_.defined(); }
  torch::Tensor& lora_a() { return lora_a_; }  // [r, in]
  torch::Tensor& lora_b() { return lora_b_; }  // [out, r]
  double lora_scale() const { return lora_scale_; }
  // The adapter's change to this layer's weight, in the weight's layout and dtype.
  torch::Tensor LoraDeltaWeight() const;

  virtual int64_t in_features() const = 0;
  virtual int64_t out_features() const = 0;
  // Whether the weight is stored [in, out] (GPT-2's Conv1D; PEFT's fan_in_fan_out).
  virtual bool fan_in_fan_out() const = 0;
  virtual const torch::Tensor& base_weight() const = 0;

  void to(torch::Device device, torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Dtype dtype, bool non_blocking = false) override;
  void to(torch::Device device, bool non_blocking = false) override;

 protected:
  // y + the adapter's term for input x (y unchanged without an adapter).
  torch::Tensor AddLora(const torch::Tensor& x, const torch::Tensor& y) const;

 private:
  torch::Tensor lora_a_, lora_b_;
  double lora_scale_ = 0.0;
  double lora_dropout_ = 0.0;
};

// torch.nn.Linear (weight [out, in], optional bias) as a LoraLayer, through dense.h's
// few-row fast path: Llama, Qwen2 and Mistral's projections.
class LinearLayerImpl : public LoraLayer {
 public:
  LinearLayerImpl(int64_t in_features, int64_t out_features, bool bias);
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_features() const override { return weight_.size(1); }
  int64_t out_features() const override { return weight_.size(0); }
  bool fan_in_fan_out() const override { return false; }
  const torch::Tensor& base_weight() const override { return weight_; }

 private:
  torch::Tensor weight_;
  torch::Tensor bias_;
};
TORCH_MODULE(LinearLayer);

}  // namespace rlhf::model
