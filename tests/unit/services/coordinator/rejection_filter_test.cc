// Rejection sampling keeps each prompt's best sample (the first of equal scores), or every
// sample at or above min_score; NaN scores are never kept.

#include "services/coordinator/rejection_filter.h"

#include <cmath>
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace rlhf::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

TEST(RejectionFilterTest, KeepsEachGroupsBest) {
  const std::vector<float> scores = {0.1f, 0.9f, 0.5f, /**/ 2, 2, 1, /**/ kNan, -1, -3};
  EXPECT_THAT(KeepForRejectionSampling(scores, 3, std::nullopt), ElementsAre(1, 3, 7));
  EXPECT_THAT(KeepForRejectionSampling({kNan, kNan}, 2, std::nullopt), IsEmpty());
}

TEST(RejectionFilterTest, AThresholdKeepsEverySampleAtOrAboveIt) {
  const std::vector<float> scores = {0.1f, 0.9f, 0.5f, 2, 2, 1, kNan, -1, -3};
  EXPECT_THAT(KeepForRejectionSampling(scores, 3, 0.5), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(KeepForRejectionSampling(scores, 3, 100.0), IsEmpty());
  EXPECT_THAT(KeepForRejectionSampling(scores, 3, -1.0), ElementsAre(0, 1, 2, 3, 4, 5, 7));
}

}  // namespace
}  // namespace rlhf::coordinator
