#include "common/jobs/job_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "tests/unit/jobs/test_util.h"

namespace rlhf::jobs {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::JobSpec Spec(const std::string& name) { return testing::StoredSpec(name); }

std::unique_ptr<JobStore> OpenOrDie(const std::string& path) {
  auto store = JobStore::Open(path);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

std::vector<std::string> Names(const std::vector<v1::Job>& jobs) {
  std::vector<std::string> names;
  for (const v1::Job& job : jobs) names.push_back(job.spec().name());
  return names;
}

TEST(JobStoreTest, CreateAndGet) {
  testing::TempDir dir;
  auto store = OpenOrDie(dir.File("jobs.db"));
  auto job = store->Create(Spec("a"));
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_THAT(job->id(), HasSubstr("job-"));
  EXPECT_EQ(job->state(), v1::JOB_STATE_QUEUED);
  EXPECT_GT(job->created_time().seconds(), 0);
  EXPECT_FALSE(job->has_started_time());

  auto got = store->Get(job->id());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->spec().name(), "a");
  EXPECT_DOUBLE_EQ(got->spec().optimizer().learning_rate(), 1e-6);
  EXPECT_EQ(store->Get("job-missing").status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(store->Create(Spec("b"), "fixed").ok());
  EXPECT_EQ(store->Create(Spec("c"), "fixed").status().code(), absl::StatusCode::kAlreadyExists);
}

TEST(JobStoreTest, ListPagesInSubmissionOrderWithStateFilter) {
  testing::TempDir dir;
  auto store = OpenOrDie(dir.File("jobs.db"));
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(store->Create(Spec(absl::StrCat("j", i)))->id());
  ASSERT_TRUE(store->Transition(ids[1], v1::JOB_STATE_RUNNING).ok());
  ASSERT_TRUE(store->Transition(ids[4], v1::JOB_STATE_RUNNING).ok());
  ASSERT_TRUE(store->Cancel(ids[5]).ok());

  auto first = store->List({}, 3, "");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Names(first->jobs), ElementsAre("j0", "j1", "j2"));
  ASSERT_FALSE(first->next_page_token.empty());
  auto second = store->List({}, 3, first->next_page_token);
  EXPECT_THAT(Names(second->jobs), ElementsAre("j3", "j4", "j5"));
  auto third = store->List({}, 3, second->next_page_token);
  EXPECT_THAT(Names(third->jobs), ElementsAre("j6"));
  EXPECT_TRUE(third->next_page_token.empty());

  auto queued = store->List({v1::JOB_STATE_QUEUED}, 0, "");
  EXPECT_THAT(Names(queued->jobs), ElementsAre("j0", "j2", "j3", "j6"));
  auto running_or_cancelled = store->List({v1::JOB_STATE_RUNNING, v1::JOB_STATE_CANCELLED}, 2, "");
  EXPECT_THAT(Names(running_or_cancelled->jobs), ElementsAre("j1", "j4"));
  auto rest = store->List({v1::JOB_STATE_RUNNING, v1::JOB_STATE_CANCELLED}, 2,
                          running_or_cancelled->next_page_token);
  EXPECT_THAT(Names(rest->jobs), ElementsAre("j5"));

  EXPECT_EQ(store->List({}, 3, "garbage!").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->List({}, -1, "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->List({}, kMaxListPageSize + 1, "").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(JobStoreTest, TransitionsAreChecked) {
  testing::TempDir dir;
  auto store = OpenOrDie(dir.File("jobs.db"));
  const std::string id = store->Create(Spec("a"))->id();
  auto running = store->Transition(id, v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_TRUE(running->has_started_time());
  auto done = store->Transition(id, v1::JOB_STATE_SUCCEEDED);
  ASSERT_TRUE(done.ok());
  EXPECT_TRUE(done->has_finished_time());

  auto illegal = store->Transition(id, v1::JOB_STATE_RUNNING);
  EXPECT_EQ(illegal.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(illegal.status().message(), HasSubstr("illegal transition SUCCEEDED -> RUNNING"));
  auto cancel = store->Cancel(id);
  EXPECT_EQ(cancel.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(cancel.status().message(), HasSubstr("already ended (SUCCEEDED)"));

  const std::string failing = store->Create(Spec("b"))->id();
  ASSERT_TRUE(store->Transition(failing, v1::JOB_STATE_RUNNING).ok());
  auto failed = store->Transition(failing, v1::JOB_STATE_FAILED, "actor rank 1 died");
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->error_message(), "actor rank 1 died");

  EXPECT_FALSE(IsLegalTransition(v1::JOB_STATE_QUEUED, v1::JOB_STATE_SUCCEEDED));
  EXPECT_TRUE(IsLegalTransition(v1::JOB_STATE_RUNNING, v1::JOB_STATE_QUEUED));
  EXPECT_FALSE(IsLegalTransition(v1::JOB_STATE_CANCELLED, v1::JOB_STATE_QUEUED));
}

TEST(JobStoreTest, ProgressAndMetrics) {
  testing::TempDir dir;
  auto store = OpenOrDie(dir.File("jobs.db"));
  const std::string id = store->Create(Spec("a"))->id();
  EXPECT_EQ(store->RecordProgress(id, 1, 10, {{"loss", 1.0}}).code(),
            absl::StatusCode::kFailedPrecondition);  // still QUEUED
  ASSERT_TRUE(store->Transition(id, v1::JOB_STATE_RUNNING).ok());
  ASSERT_TRUE(store->RecordProgress(id, 1, 10, {{"loss", 1.0}, {"kl", 0.1}}).ok());
  ASSERT_TRUE(store->RecordProgress(id, 2, 10, {{"loss", 0.5}}, "ckpt/step-2").ok());

  auto job = store->Get(id);
  EXPECT_EQ(job->iteration(), 2);
  EXPECT_EQ(job->total_iterations(), 10);
  EXPECT_EQ(job->checkpoint_path(), "ckpt/step-2");
  EXPECT_DOUBLE_EQ(job->latest_metrics().at("loss"), 0.5);
  EXPECT_DOUBLE_EQ(job->latest_metrics().at("kl"), 0.1);

  ASSERT_TRUE(store->RecordProgress(id, 3, 10, {}).ok());
  EXPECT_EQ(store->Get(id)->checkpoint_path(), "ckpt/step-2");  // empty keeps the last

  auto history = store->MetricsHistory(id);
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].name, "kl");
  EXPECT_EQ((*history)[2].iteration, 2);
  auto loss = store->MetricsHistory(id, "loss");
  ASSERT_EQ(loss->size(), 2u);
  EXPECT_DOUBLE_EQ((*loss)[1].value, 0.5);
  EXPECT_EQ(store->MetricsHistory("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(JobStoreTest, NextQueuedIsTheOldest) {
  testing::TempDir dir;
  auto store = OpenOrDie(dir.File("jobs.db"));
  EXPECT_FALSE(store->NextQueued()->has_value());
  const std::string a = store->Create(Spec("a"))->id();
  store->Create(Spec("b")).IgnoreError();
  EXPECT_EQ((*store->NextQueued())->id(), a);
  ASSERT_TRUE(store->Transition(a, v1::JOB_STATE_RUNNING).ok());
  EXPECT_EQ((*store->NextQueued())->spec().name(), "b");
}

TEST(JobStoreTest, RunningJobsAreReportedAfterReopen) {
  testing::TempDir dir;
  const std::string path = dir.File("jobs.db");
  std::string running_id;
  {
    auto store = OpenOrDie(path);
    EXPECT_TRUE(store->interrupted_job_ids().empty());
    running_id = store->Create(Spec("a"))->id();
    store->Create(Spec("b")).IgnoreError();
    ASSERT_TRUE(store->Transition(running_id, v1::JOB_STATE_RUNNING).ok());
    ASSERT_TRUE(store->RecordProgress(running_id, 4, 8, {{"loss", 0.25}}, "ckpt/4").ok());
  }
  auto store = OpenOrDie(path);
  EXPECT_THAT(store->interrupted_job_ids(), ElementsAre(running_id));
  auto job = store->Get(running_id);
  EXPECT_EQ(job->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(job->iteration(), 4);
  EXPECT_EQ(job->checkpoint_path(), "ckpt/4");
  EXPECT_DOUBLE_EQ(job->latest_metrics().at("loss"), 0.25);
  EXPECT_EQ(store->List({}, 0, "")->jobs.size(), 2u);
}

TEST(JobStoreTest, CorruptFileIsRejectedAndUntouched) {
  testing::TempDir dir;
  std::string garbage(8192, 'x');
  const std::string path = dir.Write("corrupt.db", garbage);
  auto store = JobStore::Open(path);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr(path));
  EXPECT_THAT(store.status().message(), HasSubstr("not a database"));
  EXPECT_EQ(testing::ReadAll(path), garbage);
}

TEST(JobStoreTest, ForeignDatabaseAndUnopenablePath) {
  testing::TempDir dir;
  const std::string path = dir.File("other.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  auto store = JobStore::Open(path);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("not a job store"));

  auto missing_dir = JobStore::Open(dir.File("no/such/dir/jobs.db"));
  EXPECT_FALSE(missing_dir.ok());
  EXPECT_THAT(missing_dir.status().message(), HasSubstr("no/such/dir/jobs.db"));
}

// Reads one integer/text pragma through a separate connection.
std::string Pragma(const std::string& path, const std::string& pragma) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* stmt = nullptr;
  std::string value;
  if (sqlite3_prepare_v2(db, ("PRAGMA " + pragma).c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
      sqlite3_step(stmt) == SQLITE_ROW) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

TEST(JobStoreTest, SchemaIsVersionedAndUsesWal) {
  testing::TempDir dir;
  const std::string path = dir.File("jobs.db");
  { OpenOrDie(path); }
  EXPECT_EQ(Pragma(path, "user_version"), "1");
  EXPECT_EQ(Pragma(path, "journal_mode"), "wal");

  Pragma(path, "user_version = 99");
  auto newer = JobStore::Open(path);
  EXPECT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(newer.status().message(), HasSubstr("schema version 99 is newer"));
}

TEST(JobStoreTest, ConcurrentWritersDoNotLoseJobs) {
  testing::TempDir dir;
  auto store = OpenOrDie(dir.File("jobs.db"));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&store] {
      for (int i = 0; i < 10; ++i) EXPECT_TRUE(store->Create(Spec("x")).ok());
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(store->List({}, 100, "")->jobs.size(), 40u);
}

}  // namespace
}  // namespace rlhf::jobs
