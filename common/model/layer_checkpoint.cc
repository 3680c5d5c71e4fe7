#include "common/model/layer_checkpoint.h"

#include <memory>
#include <utility>

#include "common/model/precision.h"

namespace rlhf::model {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// What backward needs besides tensors, carried in the context as an opaque capsule.
struct Recompute : torch::CustomClassHolder {
  LayerFn layer;
  AutocastState autocast;
};

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x,
                               c10::intrusive_ptr<Recompute> recompute) {
    ctx->save_for_backward({x});
    ctx->saved_data["recompute"] = c10::IValue::make_capsule(recompute);
    torch::NoGradGuard no_grad;
    return recompute->layer(x);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto recompute =
        c10::static_intrusive_pointer_cast<Recompute>(ctx->saved_data["recompute"].toCapsule());
    torch::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    torch::Tensor y;
    {
      torch::AutoGradMode grad(true);
      const torch::Device device = x.device();
      AutocastGuard autocast(device, recompute->autocast.enabled);
      y = recompute->layer(x);
    }
    // Accumulates into the layer's parameters' .grad and x.grad.
    torch::autograd::backward({y}, {grad_outputs[0]});
    return {x.grad(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor CheckpointedLayer(LayerFn layer, const torch::Tensor& x) {
  // An input without a graph (frozen embeddings) would leave the layer's parameters
  // without gradients through a custom function: run it plainly then.
  if (!torch::GradMode::is_enabled() || !x.requires_grad()) return layer(x);
  auto recompute = c10::make_intrusive<Recompute>();
  recompute->layer = std::move(layer);
  recompute->autocast = CurrentAutocast(x.device());
  return CheckpointFunction::apply(x, recompute);
}

}  // namespace rlhf::model
