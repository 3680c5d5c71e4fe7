#include "services/coordinator/group_filter.h"

#include <algorithm>

namespace rlhf::coordinator {

bool IsInformativeGroup(const std::vector<float>& rewards, int64_t first, int64_t group_size) {
  for (int64_t i = first + 1; i < first + group_size; ++i) {
    if (rewards[i] != rewards[first]) return true;
  }
  return false;
}

std::vector<int64_t> ChooseGroups(const std::vector<float>& rewards, int64_t group_size,
                                  int64_t want) {
  const int64_t groups = group_size > 0 ? static_cast<int64_t>(rewards.size()) / group_size : 0;
  std::vector<int64_t> chosen, fillers;
  for (int64_t g = 0; g < groups; ++g) {
    if (IsInformativeGroup(rewards, g * group_size, group_size)) {
      if (static_cast<int64_t>(chosen.size()) < want) chosen.push_back(g);
    } else {
      fillers.push_back(g);
    }
  }
  for (size_t i = 0; i < fillers.size() && static_cast<int64_t>(chosen.size()) < want; ++i) {
    chosen.push_back(fillers[i]);
  }
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

}  // namespace rlhf::coordinator
