// common/io/confined_path.h: relative paths resolve under the root; "..", absolute paths
// and symlinks that leave it are refused with the field named.

#include "common/io/confined_path.h"

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/testing/temp_dir.h"

namespace rlhf::io {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(ConfinedPathTest, ResolvesInsideAndRefusesEveryEscape) {
  test_support::TempDir temp;
  const fs::path root = temp.path() / "data";
  fs::create_directories(root / "models");
  fs::create_directories(temp.path() / "data-other");
  fs::create_directory_symlink(temp.path(), root / "up");  // a link out of the root

  auto inside = ResolveUnder(root, "models/x", "models.policy_dir");
  ASSERT_TRUE(inside.ok()) << inside.status();
  EXPECT_EQ(*inside, fs::canonical(root) / "models/x");
  EXPECT_TRUE(ResolveUnder(root, (root / "models").string(), "f").ok());
  EXPECT_TRUE(ResolveUnder(root, "models/../models/./y", "f").ok());
  EXPECT_TRUE(ResolveUnder(root.string() + "/", "models", "f").ok());

  for (const std::string& escape :
       {std::string("../x"), std::string("models/../../x"), std::string("/etc/passwd"),
        (temp.path() / "data-other").string(), std::string("up/data-other"),
        std::string("up/data/../data-other")}) {
    auto refused = ResolveUnder(root, escape, "checkpoint.dir");
    ASSERT_FALSE(refused.ok()) << escape;
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(refused.status().message(), HasSubstr("checkpoint.dir: " + escape + " is outside"));
  }
  EXPECT_FALSE(ResolveUnder(root, "", "f").ok());
  // No root: nothing confined.
  EXPECT_TRUE(ResolveUnder("", "/etc/passwd", "f").ok());
}

}  // namespace
}  // namespace rlhf::io
