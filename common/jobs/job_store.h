#pragma once
// The coordinator's durable job table: SQLite in WAL mode, one connection guarded by a
// mutex, prepared statements, schema versioned with PRAGMA user_version.
//
// Thread-safe: every method may be called from any thread. Several processes may open
// the same file (writes take SQLite's write lock with BEGIN IMMEDIATE), but one
// coordinator per store is the intended deployment.

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/jobs/job_state.h"
#include "common/jobs/sqlite_statement.h"
#include "rlhf/v1/job.pb.h"

namespace rlhf::jobs {

inline constexpr int kJobStoreSchemaVersion = 1;
inline constexpr int kDefaultListPageSize = 50;
inline constexpr int kMaxListPageSize = 1000;

struct MetricPoint {
  int64_t iteration = 0;
  std::string name;
  double value = 0;
};

struct JobPage {
  std::vector<v1::Job> jobs;
  std::string next_page_token;  // empty on the last page
};

class JobStore {
 public:
  // Opens or creates the store. A file that is not a SQLite database, is corrupt, was
  // written by a newer schema or holds other tables is an error (DataLoss or
  // FailedPrecondition naming the path) and is left untouched.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& path);
  ~JobStore();
  JobStore(const JobStore&) = delete;
  JobStore& operator=(const JobStore&) = delete;

  // Jobs that were RUNNING when the store was opened (a previous process died or was
  // stopped mid-run), in submission order: the coordinator resumes them from their
  // checkpoint_path or requeues them.
  const std::vector<std::string>& interrupted_job_ids() const { return interrupted_; }

  // Stores a new QUEUED job. `id` empty = a fresh random id; a duplicate is AlreadyExists.
  absl::StatusOr<v1::Job> Create(const v1::JobSpec& spec, std::string_view id = "");
  // NotFound for an unknown id.
  absl::StatusOr<v1::Job> Get(std::string_view id);
  // Jobs in submission order whose state is in `states` (empty = all). page_size 0 =
  // kDefaultListPageSize; above kMaxListPageSize or negative, or a page_token this store
  // did not hand out, is InvalidArgument.
  absl::StatusOr<JobPage> List(const std::vector<v1::JobState>& states, int page_size,
                               std::string_view page_token);
  // Moves a job to `to`, stamping started/finished times; `error_message` is kept for
  // FAILED/CANCELLED. An illegal transition is FailedPrecondition naming both states.
  absl::StatusOr<v1::Job> Transition(std::string_view id, v1::JobState to,
                                     std::string_view error_message = "");
  // Cancels a QUEUED or RUNNING job; FailedPrecondition if it already ended.
  absl::StatusOr<v1::Job> Cancel(std::string_view id, std::string_view reason = "");
  // In one transaction: progress, the metrics of `iteration` appended to the history
  // (and made the job's latest), and the checkpoint path when non-empty. The job must be
  // RUNNING (FailedPrecondition otherwise).
  absl::Status RecordProgress(std::string_view id, int64_t iteration, int64_t total_iterations,
                              const std::map<std::string, double>& metrics,
                              std::string_view checkpoint_path = "");
  // The oldest QUEUED job, or nullopt. Does not claim it: Transition(id, RUNNING) does.
  absl::StatusOr<std::optional<v1::Job>> NextQueued();
  // Every recorded metric of a job, by iteration then name. `name` non-empty filters.
  absl::StatusOr<std::vector<MetricPoint>> MetricsHistory(std::string_view id,
                                                          std::string_view name = "");

 private:
  JobStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Initialize();
  absl::Status PrepareStatements();
  absl::StatusOr<v1::Job> GetLocked(std::string_view id);
  absl::StatusOr<v1::Job> ReadJobRow(internal::Statement& statement);
  absl::StatusOr<v1::Job> TransitionLocked(std::string_view id, v1::JobState to,
                                           std::string_view error_message);
  absl::Status RecordProgressLocked(std::string_view id, int64_t iteration,
                                    int64_t total_iterations,
                                    const std::map<std::string, double>& metrics,
                                    std::string_view checkpoint_path);

  std::mutex mu_;
  sqlite3* db_;
  const std::string path_;
  std::vector<std::string> interrupted_;
  internal::Statement insert_job_, select_job_, list_jobs_, update_state_, update_progress_,
      insert_metric_, upsert_latest_, select_latest_, select_next_, select_history_;
};

}  // namespace rlhf::jobs
