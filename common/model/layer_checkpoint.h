#pragma once

// Activation (gradient) checkpointing of one decoder layer, as torch.utils.checkpoint's
// reentrant variant: the forward runs without recording a graph and keeps only the
// layer's input; backward runs the layer again with autograd on and backpropagates
// through the recomputed graph, accumulating the layer's parameter gradients as a normal
// backward would. The same gradients (the layers are deterministic: no dropout) for
// about one more forward of compute, and only one layer's activations alive at a time.
//
// The autocast state of the forward is restored for the recomputation (backward may run
// on another thread, e.g. CUDA's autograd device thread).

#include <functional>

#include <torch/torch.h>

namespace rlhf::model {

using LayerFn = std::function<torch::Tensor(const torch::Tensor&)>;

// layer(x), checkpointed when autograd is recording; otherwise a plain call. `layer`
// must capture by value everything it reads besides x: it runs again during backward.
torch::Tensor CheckpointedLayer(LayerFn layer, const torch::Tensor& x);

}  // namespace rlhf::model
