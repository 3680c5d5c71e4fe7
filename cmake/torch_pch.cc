// Compiled once to build the precompiled header for <torch/torch.h>.
