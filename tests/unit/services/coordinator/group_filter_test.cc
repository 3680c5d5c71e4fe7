// DAPO's dynamic sampling keeps the groups whose rewards differ, in sampling order, and
// fills the batch with the earliest uniform groups only when too few differ.

#include "services/coordinator/group_filter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace rlhf::coordinator {
namespace {

using ::testing::ElementsAre;

TEST(GroupFilterTest, AGroupIsInformativeWhenAnyRewardDiffers) {
  const std::vector<float> rewards = {1, 1, 1, 0, 1, 1, 0.5f, 0.5f};
  EXPECT_FALSE(IsInformativeGroup(rewards, 0, 2));
  EXPECT_TRUE(IsInformativeGroup(rewards, 2, 2));
  EXPECT_TRUE(IsInformativeGroup(rewards, 0, 4));  // {1, 1, 1, 0}
  EXPECT_FALSE(IsInformativeGroup(rewards, 6, 2));
  EXPECT_FALSE(IsInformativeGroup(rewards, 0, 1));  // one sample has no spread
}

TEST(GroupFilterTest, ChoosesInformativeGroupsFirstThenFillsInSamplingOrder) {
  // Groups of 2: g0 uniform, g1 differs, g2 uniform, g3 differs, g4 differs.
  const std::vector<float> rewards = {0, 0, 0, 1, 2, 2, 1, 0, 3, 4};
  EXPECT_THAT(ChooseGroups(rewards, 2, 2), ElementsAre(1, 3));
  EXPECT_THAT(ChooseGroups(rewards, 2, 3), ElementsAre(1, 3, 4));
  // Only three differ: the earliest uniform group fills the fourth place.
  EXPECT_THAT(ChooseGroups(rewards, 2, 4), ElementsAre(0, 1, 3, 4));
  EXPECT_THAT(ChooseGroups(rewards, 2, 5), ElementsAre(0, 1, 2, 3, 4));
  EXPECT_THAT(ChooseGroups(rewards, 2, 6), ElementsAre(0, 1, 2, 3, 4));  // all there are
  EXPECT_THAT(ChooseGroups({5, 5, 5, 5}, 2, 1), ElementsAre(0));
  EXPECT_TRUE(ChooseGroups({}, 2, 3).empty());
}

}  // namespace
}  // namespace rlhf::coordinator
