// JobStore: opening a store — refusing what it cannot trust (an empty or foreign file,
// corrupt pages, a newer schema, a store another coordinator holds), creating the schema,
// preparing the statements.

#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/jobs/job_store.h"

namespace rlhf::jobs {
namespace {

using internal::Exec;
using internal::Statement;
using internal::Transaction;

// Version 1. Times are Unix milliseconds; `seq` is the submission order.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE jobs (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  spec_json TEXT NOT NULL,
  state INTEGER NOT NULL,
  iteration INTEGER NOT NULL DEFAULT 0,
  total_iterations INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  checkpoint_path TEXT NOT NULL DEFAULT '',
  created_ms INTEGER NOT NULL,
  started_ms INTEGER,
  finished_ms INTEGER
);
CREATE INDEX jobs_by_state ON jobs(state, seq);
CREATE TABLE metrics (
  job_id TEXT NOT NULL REFERENCES jobs(id),
  iteration INTEGER NOT NULL,
  name TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (job_id, iteration, name)
);
CREATE TABLE latest_metrics (
  job_id TEXT NOT NULL REFERENCES jobs(id),
  name TEXT NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (job_id, name)
);
PRAGMA user_version = 1;
)sql";

constexpr const char* kJobColumns =
    "id, spec_json, state, iteration, total_iterations, error, checkpoint_path, created_ms, "
    "started_ms, finished_ms, seq";

// A store another process holds (SQLITE_BUSY) names that; other errors pass through.
absl::Status LockStatus(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kUnavailable ||
      !absl::StrContains(status.message(), "locked")) {
    return status;
  }
  return absl::FailedPreconditionError(
      "is in use by another coordinator (SQLite holds an exclusive lock for it); stop that "
      "one first, or give this one its own --state-db");
}

}  // namespace

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& path) {
  // SQLite would quietly make an empty file a new database: every job silently gone.
  std::error_code error;
  if (std::filesystem::is_regular_file(path, error) &&
      std::filesystem::file_size(path, error) == 0 && !error) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job store ", path,
        " is an empty file (0 bytes), not a job store; refusing to start as if no job existed "
        "(remove the file to start a new store)"));
  }
  sqlite3* db = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    absl::Status status = absl::FailedPreconditionError(absl::StrCat(
        "cannot open job store ", path, ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return status;
  }
  std::unique_ptr<JobStore> store(new JobStore(db, path));
  absl::Status status = LockStatus(store->Initialize());
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("job store ", path, ": ", status.message()));
  }
  return store;
}

JobStore::~JobStore() {
  // close_v2 defers the close until the member statements are finalized, after this body.
  sqlite3_close_v2(db_);
}

absl::Status JobStore::Initialize() {
  // No waiting while opening: a store another process holds is refused at once.
  sqlite3_busy_timeout(db_, 0);
  // Read the header before writing anything: a non-database or corrupt file fails here
  // (SQLITE_NOTADB / SQLITE_CORRUPT) and is left as it was.
  Statement version_query;
  absl::Status status = version_query.Prepare(db_, "PRAGMA user_version");
  if (!status.ok()) return status;
  absl::StatusOr<bool> row = version_query.Step();
  if (!row.ok()) return row.status();
  const int64_t version = *row ? version_query.Int(0) : 0;
  version_query.Reset();  // an active statement holds a read transaction
  if (version > 0) {
    // Corrupt pages are refused at start, not discovered by a later SubmitJob.
    Statement check;
    status = check.Prepare(db_, "PRAGMA quick_check");
    if (!status.ok()) return status;
    row = check.Step();
    if (!row.ok()) return row.status();
    const std::string verdict = *row ? check.Text(0) : "no answer";
    check.Reset();
    if (verdict != "ok") {
      return absl::DataLossError(absl::StrCat("fails SQLite's quick_check (", verdict,
                                              "); restore it from a backup or move it aside"));
    }
  }
  if (version > kJobStoreSchemaVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat("schema version ", version, " is newer than this binary's (",
                     kJobStoreSchemaVersion, "); upgrade the coordinator"));
  }
  if (version == 0) {
    Statement tables;
    status = tables.Prepare(db_, "SELECT count(*) FROM sqlite_master");
    if (!status.ok()) return status;
    row = tables.Step();
    if (!row.ok()) return row.status();
    const int64_t table_count = tables.Int(0);
    tables.Reset();
    if (table_count != 0) {
      return absl::FailedPreconditionError(
          "is a SQLite database with other tables, not a job store; refusing to modify it");
    }
  }
  // One coordinator per store: the first holds an exclusive lock until it closes, so a
  // second one refuses to start instead of running the same jobs again.
  status =
      Exec(db_, "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;");
  if (!status.ok()) return status;
  status = Exec(db_, "BEGIN EXCLUSIVE; COMMIT;");
  if (!status.ok()) return status;
  sqlite3_busy_timeout(db_, 5000);
  if (version == 0) {
    Transaction transaction(db_);
    status = transaction.Begin();
    if (status.ok()) status = Exec(db_, kSchemaV1);
    if (status.ok()) status = transaction.Commit();
    if (!status.ok()) return status;
  }
  status = PrepareStatements();
  if (!status.ok()) return status;

  Statement running;
  status = running.Prepare(db_, "SELECT id FROM jobs WHERE state = ?1 ORDER BY seq");
  if (!status.ok()) return status;
  running.Bind(1, int64_t{v1::JOB_STATE_RUNNING});
  for (row = running.Step(); row.ok() && *row; row = running.Step()) {
    interrupted_.push_back(running.Text(0));
  }
  return row.status();
}

absl::Status JobStore::PrepareStatements() {
  const std::string select = absl::StrCat("SELECT ", kJobColumns, " FROM jobs ");
  const std::pair<Statement*, std::string> statements[] = {
      {&insert_job_, "INSERT INTO jobs (id, spec_json, state, created_ms) VALUES (?1, ?2, ?3, ?4)"},
      {&select_job_, select + "WHERE id = ?1"},
      // ?2 is a bit mask of the accepted states.
      {&list_jobs_, select + "WHERE seq > ?1 AND ((?2 >> state) & 1) = 1 ORDER BY seq LIMIT ?3"},
      {&update_state_,
       "UPDATE jobs SET state = ?2, error = ?3, started_ms = coalesce(started_ms, ?4), "
       "finished_ms = ?5 WHERE id = ?1"},
      {&update_progress_,
       "UPDATE jobs SET iteration = ?2, total_iterations = ?3, "
       "checkpoint_path = CASE WHEN ?4 = '' THEN checkpoint_path ELSE ?4 END WHERE id = ?1"},
      {&insert_metric_,
       "INSERT OR REPLACE INTO metrics (job_id, iteration, name, value) VALUES (?1, ?2, ?3, ?4)"},
      {&upsert_latest_,
       "INSERT OR REPLACE INTO latest_metrics (job_id, name, value) VALUES (?1, ?2, ?3)"},
      {&select_latest_, "SELECT name, value FROM latest_metrics WHERE job_id = ?1"},
      {&select_next_, select + "WHERE state = ?1 ORDER BY seq LIMIT 1"},
      {&select_history_,
       "SELECT iteration, name, value FROM metrics WHERE job_id = ?1 AND (?2 = '' OR name = ?2) "
       "ORDER BY iteration, name"},
  };
  for (const auto& [statement, sql] : statements) {
    absl::Status status = statement->Prepare(db_, sql);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

}  // namespace rlhf::jobs
