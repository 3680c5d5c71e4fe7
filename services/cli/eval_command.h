#pragma once
// rlhf eval: measures trained models on held-out data with the same code paths the
// services run (tokenisation as in jobs, ReferenceCore log-probs, the reward scorer,
// batched generation).

#include <string>
#include <vector>

namespace rlhf::cli {

int RunEval(const std::vector<std::string>& args);

}  // namespace rlhf::cli
