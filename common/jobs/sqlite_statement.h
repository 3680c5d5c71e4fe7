#pragma once
// Internal to rlhf_jobs: a thin RAII wrapper over one prepared sqlite3 statement. Not
// thread-safe: JobStore holds its mutex around every use.

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rlhf::jobs::internal {

// An error status for the connection's last failure: "<what>: <sqlite message>".
absl::Status SqliteError(sqlite3* db, std::string_view what);

class Statement {
 public:
  Statement() = default;
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status Prepare(sqlite3* db, std::string_view sql);

  // Clears bindings and the previous run; call before binding a new run.
  void Reset();
  void Bind(int index, int64_t value);
  void Bind(int index, double value);
  void Bind(int index, std::string_view value);
  void BindNull(int index);

  // true: a row is ready; false: done. Errors name the statement.
  absl::StatusOr<bool> Step();
  // Runs to completion (for statements that return no rows).
  absl::Status Run();

  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  bool IsNull(int column) const;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// Executes one or more statements without results (schema, pragmas, BEGIN/COMMIT).
absl::Status Exec(sqlite3* db, const char* sql);

// RAII transaction: rolls back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {}
  ~Transaction() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  absl::Status Begin() {
    absl::Status status = Exec(db_, "BEGIN IMMEDIATE");
    open_ = status.ok();
    return status;
  }
  absl::Status Commit() {
    absl::Status status = Exec(db_, "COMMIT");
    if (status.ok()) open_ = false;
    return status;
  }

 private:
  sqlite3* db_;
  bool open_ = false;
};

}  // namespace rlhf::jobs::internal
