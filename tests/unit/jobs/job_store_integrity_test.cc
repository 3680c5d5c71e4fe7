// The job store never starts on a store it cannot trust, and never shares one: a
// zero-length file, corrupt pages and a second coordinator are refused at Open; a queued
// job whose stored spec no longer parses fails with the reason instead of blocking the queue.

#include <sqlite3.h>

#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/jobs/job_store.h"
#include "tests/unit/jobs/test_util.h"

namespace rlhf::jobs {
namespace {

using ::testing::HasSubstr;

v1::JobSpec Spec(const std::string& name) { return testing::StoredSpec(name); }

void Sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
}

TEST(JobStoreIntegrityTest, AnEmptyFileIsRefusedNotRecreated) {
  testing::TempDir dir;
  const std::string path = dir.Write("jobs.db", "");
  auto store = JobStore::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("empty file"));
  EXPECT_EQ(testing::ReadAll(path), "");
}

TEST(JobStoreIntegrityTest, ASecondCoordinatorOnTheSameStoreIsRefused) {
  testing::TempDir dir;
  const std::string path = dir.File("jobs.db");
  {
    auto first = JobStore::Open(path);
    ASSERT_TRUE(first.ok()) << first.status();
    auto second = JobStore::Open(path);
    EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(second.status().message(), HasSubstr("in use by another coordinator"));
    EXPECT_TRUE((*first)->Create(Spec("still mine")).ok());
  }
  auto after = JobStore::Open(path);  // the lock goes with the first one
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ((*after)->List({}, 10, "")->jobs.size(), 1u);
}

TEST(JobStoreIntegrityTest, CorruptPagesAreRefusedAtOpen) {
  testing::TempDir dir;
  const std::string path = dir.File("jobs.db");
  {
    auto store = JobStore::Open(path);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 50; ++i) ASSERT_TRUE((*store)->Create(Spec("job")).ok());
  }
  std::string bytes = testing::ReadAll(path);
  ASSERT_GT(bytes.size(), 3 * 4096u);
  for (size_t i = 4096; i < 3 * 4096; ++i) bytes[i] = static_cast<char>(0xA5);  // pages 2-3
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  auto store = JobStore::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
  EXPECT_EQ(testing::ReadAll(path), bytes);  // left as it was
}

TEST(JobStoreIntegrityTest, AnUnreadableQueuedJobFailsAndTheQueueMovesOn) {
  testing::TempDir dir;
  const std::string path = dir.File("jobs.db");
  std::string broken, fine;
  {
    auto store = JobStore::Open(path);
    ASSERT_TRUE(store.ok());
    broken = (*store)->Create(Spec("broken"))->id();
    fine = (*store)->Create(Spec("fine"))->id();
  }
  Sql(path, "UPDATE jobs SET spec_json = '{\"algorithm\": ' WHERE id = '" + broken + "'");
  auto store = JobStore::Open(path);
  ASSERT_TRUE(store.ok()) << store.status();
  auto next = (*store)->NextQueued();
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(next->has_value());
  EXPECT_EQ((*next)->id(), fine);
  auto next_again = (*store)->NextQueued();  // the broken one is not offered again
  ASSERT_TRUE(next_again.ok());
  EXPECT_EQ((*next_again)->id(), fine);
}

}  // namespace
}  // namespace rlhf::jobs
