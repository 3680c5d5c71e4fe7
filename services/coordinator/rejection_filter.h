#pragma once
// Rejection sampling's choice (RAFT, Dong et al. 2023; OpenRLHF's best-of-n): of each
// prompt's group of scored samples, which are trained on.

#include <cstdint>
#include <optional>
#include <vector>

namespace rlhf::coordinator {

// Indices into `scores` (group g at [g * group_size, (g + 1) * group_size)), ascending:
// each group's highest-scoring sample (the first of equal ones), or, with `min_score`,
// every sample scoring >= it. A NaN score is never kept.
std::vector<int64_t> KeepForRejectionSampling(const std::vector<float>& scores, int64_t group_size,
                                              std::optional<double> min_score);

}  // namespace rlhf::coordinator
