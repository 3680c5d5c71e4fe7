#include "common/jobs/job_store.h"

#include <chrono>
#include <cstdio>
#include <random>
#include <utility>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/jobs/job_spec.h"

namespace rlhf::jobs {
namespace {

using internal::Exec;
using internal::SqliteError;
using internal::Statement;
using internal::Transaction;

absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SetTime(int64_t ms, google::protobuf::Timestamp* out) {
  out->set_seconds(ms / 1000);
  out->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
}

std::string NewJobId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "job-%016llx", static_cast<unsigned long long>(rng()));
  return buffer;
}

// Page tokens are the last returned seq, base64-wrapped so that clients treat them as
// opaque.
std::string MakePageToken(int64_t seq) {
  return absl::WebSafeBase64Escape(absl::StrCat("seq:", seq));
}

absl::StatusOr<int64_t> ParsePageToken(std::string_view token) {
  std::string decoded;
  int64_t seq = 0;
  if (!absl::WebSafeBase64Unescape(Absl(token), &decoded) || decoded.rfind("seq:", 0) != 0 ||
      !absl::SimpleAtoi(absl::string_view(decoded).substr(4), &seq) || seq < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: \"", Absl(token), "\" was not returned by ListJobs"));
  }
  return seq;
}

}  // namespace

absl::StatusOr<v1::Job> JobStore::ReadJobRow(Statement& row) {
  v1::Job job;
  job.set_id(row.Text(0));
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // a spec stored by a newer binary still loads
  auto parsed =
      google::protobuf::util::JsonStringToMessage(row.Text(1), job.mutable_spec(), options);
  if (!parsed.ok()) {
    return absl::DataLossError(
        absl::StrCat("job ", job.id(), ": stored spec does not parse: ",
                     std::string(parsed.message().data(), parsed.message().size())));
  }
  job.set_state(static_cast<v1::JobState>(row.Int(2)));
  job.set_iteration(row.Int(3));
  job.set_total_iterations(row.Int(4));
  job.set_error_message(row.Text(5));
  job.set_checkpoint_path(row.Text(6));
  SetTime(row.Int(7), job.mutable_created_time());
  if (!row.IsNull(8)) SetTime(row.Int(8), job.mutable_started_time());
  if (!row.IsNull(9)) SetTime(row.Int(9), job.mutable_finished_time());

  select_latest_.Reset();
  select_latest_.Bind(1, std::string_view(job.id()));
  absl::StatusOr<bool> metric = select_latest_.Step();
  for (; metric.ok() && *metric; metric = select_latest_.Step()) {
    (*job.mutable_latest_metrics())[select_latest_.Text(0)] = select_latest_.Double(1);
  }
  if (!metric.ok()) return metric.status();
  return job;
}

absl::StatusOr<v1::Job> JobStore::GetLocked(std::string_view id) {
  select_job_.Reset();
  select_job_.Bind(1, id);
  absl::StatusOr<bool> row = select_job_.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(absl::StrCat("no job with id \"", Absl(id), "\""));
  absl::StatusOr<v1::Job> job = ReadJobRow(select_job_);
  select_job_.Reset();
  return job;
}

absl::StatusOr<v1::Job> JobStore::Create(const v1::JobSpec& spec, std::string_view id) {
  absl::StatusOr<std::string> json = JobSpecToJson(spec);
  if (!json.ok()) return json.status();
  std::lock_guard<std::mutex> lock(mu_);
  const std::string job_id = id.empty() ? NewJobId() : std::string(id);
  insert_job_.Reset();
  insert_job_.Bind(1, std::string_view(job_id));
  insert_job_.Bind(2, std::string_view(*json));
  insert_job_.Bind(3, int64_t{v1::JOB_STATE_QUEUED});
  insert_job_.Bind(4, NowMs());
  absl::Status status = insert_job_.Run();
  if ((sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_UNIQUE) && !status.ok()) {
    return absl::AlreadyExistsError(absl::StrCat("job \"", job_id, "\" already exists"));
  }
  if (!status.ok()) return status;
  return GetLocked(job_id);
}

absl::StatusOr<v1::Job> JobStore::Get(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  return GetLocked(id);
}

absl::StatusOr<JobPage> JobStore::List(const std::vector<v1::JobState>& states, int page_size,
                                       std::string_view page_token) {
  if (page_size < 0 || page_size > kMaxListPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be in [0, ", kMaxListPageSize, "], got ", page_size));
  }
  if (page_size == 0) page_size = kDefaultListPageSize;
  int64_t after = 0;
  if (!page_token.empty()) {
    absl::StatusOr<int64_t> seq = ParsePageToken(page_token);
    if (!seq.ok()) return seq.status();
    after = *seq;
  }
  int64_t mask = 0;
  for (v1::JobState state : states) mask |= int64_t{1} << state;
  if (states.empty()) mask = ~int64_t{0};

  std::lock_guard<std::mutex> lock(mu_);
  list_jobs_.Reset();
  list_jobs_.Bind(1, after);
  list_jobs_.Bind(2, mask);
  list_jobs_.Bind(3, int64_t{page_size} + 1);  // one more tells whether a next page exists
  JobPage page;
  int64_t last_seq = 0;
  absl::StatusOr<bool> row = list_jobs_.Step();
  for (; row.ok() && *row; row = list_jobs_.Step()) {
    if (static_cast<int>(page.jobs.size()) == page_size) {
      page.next_page_token = MakePageToken(last_seq);
      break;
    }
    absl::StatusOr<v1::Job> job = ReadJobRow(list_jobs_);
    if (!job.ok()) return job.status();
    last_seq = list_jobs_.Int(10);
    page.jobs.push_back(*std::move(job));
  }
  list_jobs_.Reset();
  if (!row.ok()) return row.status();
  return page;
}

absl::StatusOr<v1::Job> JobStore::TransitionLocked(std::string_view id, v1::JobState to,
                                                   std::string_view error_message) {
  Transaction transaction(db_);
  absl::Status status = transaction.Begin();
  if (!status.ok()) return status;
  absl::StatusOr<v1::Job> job = GetLocked(id);
  if (!job.ok()) return job.status();
  if (!IsLegalTransition(job->state(), to)) {
    return absl::FailedPreconditionError(absl::StrCat("job ", Absl(id), ": illegal transition ",
                                                      Absl(JobStateName(job->state())), " -> ",
                                                      Absl(JobStateName(to))));
  }
  const int64_t now = NowMs();
  update_state_.Reset();
  update_state_.Bind(1, id);
  update_state_.Bind(2, int64_t{to});
  update_state_.Bind(3, error_message);
  if (to == v1::JOB_STATE_RUNNING) {
    update_state_.Bind(4, now);
  } else {
    update_state_.BindNull(4);
  }
  if (IsTerminal(to)) {
    update_state_.Bind(5, now);
  } else {
    update_state_.BindNull(5);
  }
  status = update_state_.Run();
  if (status.ok()) status = transaction.Commit();
  if (!status.ok()) return status;
  return GetLocked(id);
}

absl::StatusOr<v1::Job> JobStore::Transition(std::string_view id, v1::JobState to,
                                             std::string_view error_message) {
  std::lock_guard<std::mutex> lock(mu_);
  return TransitionLocked(id, to, error_message);
}

absl::StatusOr<v1::Job> JobStore::Cancel(std::string_view id, std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<v1::Job> job = GetLocked(id);
  if (!job.ok()) return job.status();
  if (IsTerminal(job->state())) {
    return absl::FailedPreconditionError(absl::StrCat("job ", Absl(id), " already ended (",
                                                      Absl(JobStateName(job->state())),
                                                      "); nothing to cancel"));
  }
  return TransitionLocked(id, v1::JOB_STATE_CANCELLED, reason);
}

absl::Status JobStore::RecordProgress(std::string_view id, int64_t iteration,
                                      int64_t total_iterations,
                                      const std::map<std::string, double>& metrics,
                                      std::string_view checkpoint_path) {
  std::lock_guard<std::mutex> lock(mu_);
  return RecordProgressLocked(id, iteration, total_iterations, metrics, checkpoint_path);
}

absl::Status JobStore::RecordProgressLocked(std::string_view id, int64_t iteration,
                                            int64_t total_iterations,
                                            const std::map<std::string, double>& metrics,
                                            std::string_view checkpoint_path) {
  Transaction transaction(db_);
  absl::Status status = transaction.Begin();
  if (!status.ok()) return status;
  absl::StatusOr<v1::Job> job = GetLocked(id);
  if (!job.ok()) return job.status();
  if (job->state() != v1::JOB_STATE_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("job ", Absl(id), " is ",
                                                      Absl(JobStateName(job->state())),
                                                      ", not RUNNING; progress not recorded"));
  }
  update_progress_.Reset();
  update_progress_.Bind(1, id);
  update_progress_.Bind(2, iteration);
  update_progress_.Bind(3, total_iterations);
  update_progress_.Bind(4, checkpoint_path);
  status = update_progress_.Run();
  for (auto it = metrics.begin(); status.ok() && it != metrics.end(); ++it) {
    insert_metric_.Reset();
    insert_metric_.Bind(1, id);
    insert_metric_.Bind(2, iteration);
    insert_metric_.Bind(3, std::string_view(it->first));
    insert_metric_.Bind(4, it->second);
    status = insert_metric_.Run();
    if (!status.ok()) break;
    upsert_latest_.Reset();
    upsert_latest_.Bind(1, id);
    upsert_latest_.Bind(2, std::string_view(it->first));
    upsert_latest_.Bind(3, it->second);
    status = upsert_latest_.Run();
  }
  if (status.ok()) status = transaction.Commit();
  return status;
}

absl::StatusOr<std::optional<v1::Job>> JobStore::NextQueued() {
  std::lock_guard<std::mutex> lock(mu_);
  select_next_.Reset();
  select_next_.Bind(1, int64_t{v1::JOB_STATE_QUEUED});
  for (;;) {
    absl::StatusOr<bool> row = select_next_.Step();
    if (!row.ok()) return row.status();
    if (!*row) return std::optional<v1::Job>();
    const std::string id = select_next_.Text(0);
    absl::StatusOr<v1::Job> job = ReadJobRow(select_next_);
    select_next_.Reset();
    if (job.ok()) return std::optional<v1::Job>(*std::move(job));
    // A stored spec that no longer parses must not block the queue: that job fails with
    // the reason, and the next one runs.
    update_state_.Reset();
    update_state_.Bind(1, std::string_view(id));
    update_state_.Bind(2, int64_t{v1::JOB_STATE_FAILED});
    const std::string reason(job.status().message());
    update_state_.Bind(3, std::string_view(reason));
    update_state_.BindNull(4);
    update_state_.Bind(5, NowMs());
    if (absl::Status failed = update_state_.Run(); !failed.ok()) return failed;
    select_next_.Bind(1, int64_t{v1::JOB_STATE_QUEUED});
  }
}

absl::StatusOr<std::vector<MetricPoint>> JobStore::MetricsHistory(std::string_view id,
                                                                  std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<v1::Job> job = GetLocked(id);
  if (!job.ok()) return job.status();
  select_history_.Reset();
  select_history_.Bind(1, id);
  select_history_.Bind(2, name);
  std::vector<MetricPoint> points;
  absl::StatusOr<bool> row = select_history_.Step();
  for (; row.ok() && *row; row = select_history_.Step()) {
    points.push_back({select_history_.Int(0), select_history_.Text(1), select_history_.Double(2)});
  }
  if (!row.ok()) return row.status();
  return points;
}

}  // namespace rlhf::jobs
