#include "services/coordinator/rejection_filter.h"

#include <cmath>

namespace rlhf::coordinator {

std::vector<int64_t> KeepForRejectionSampling(const std::vector<float>& scores, int64_t group_size,
                                              std::optional<double> min_score) {
  std::vector<int64_t> kept;
  const int64_t rows = static_cast<int64_t>(scores.size());
  if (min_score.has_value()) {
    for (int64_t i = 0; i < rows; ++i) {
      if (!std::isnan(scores[i]) && scores[i] >= *min_score) kept.push_back(i);
    }
    return kept;
  }
  if (group_size < 1) return kept;
  for (int64_t first = 0; first + group_size <= rows; first += group_size) {
    int64_t best = -1;
    for (int64_t i = first; i < first + group_size; ++i) {
      if (!std::isnan(scores[i]) && (best < 0 || scores[i] > scores[best])) best = i;
    }
    if (best >= 0) kept.push_back(best);
  }
  return kept;
}

}  // namespace rlhf::coordinator
