#pragma once
// DAPO's dynamic sampling (Yu et al. 2025, section 3.2; veRL algorithm.filter_groups): a
// group of samples whose rewards are all equal gets zero advantage from a group baseline
// (GRPO, RLOO) and so no gradient; the coordinator samples more prompts instead.

#include <cstdint>
#include <vector>

namespace rlhf::coordinator {

// Whether the `group_size` rewards starting at `first` are not all equal.
bool IsInformativeGroup(const std::vector<float>& rewards, int64_t first, int64_t group_size);

// Which of the groups sampled so far make the batch: the first `want` informative ones
// (rewards not all equal), then, if fewer exist, the earliest uninformative ones to fill
// the batch; returned in sampling order. `rewards` holds every sampled group's rewards,
// group g at [g * group_size, (g + 1) * group_size).
std::vector<int64_t> ChooseGroups(const std::vector<float>& rewards, int64_t group_size,
                                  int64_t want);

}  // namespace rlhf::coordinator
