// JobMetrics alone (a fake clock, a real JobStore), then through a real Coordinator: jobs
// that succeed, fail and are cancelled, the series removed after the grace period, and
// the counts read back from the store by a restarted coordinator.

#include "services/coordinator/job_metrics.h"

#include <fstream>
#include <optional>
#include <thread>

#include <gtest/gtest.h>

#include "common/jobs/job_state.h"
#include "services/coordinator/coordinator.h"
#include "services/local/local_services.h"
#include "tests/unit/testing/temp_dir.h"

namespace rlhf::coordinator {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::system_clock;

constexpr char kModelDir[] = RLHF_SOURCE_DIR "/tests/golden/fixtures/models/gpt2";

bool HasLabels(const prometheus::ClientMetric& metric, const prometheus::Labels& labels) {
  for (const auto& [name, value] : labels) {
    bool found = false;
    for (const auto& label : metric.label) found |= label.name == name && label.value == value;
    if (!found) return false;
  }
  return true;
}

// The value of the series of `name` carrying `labels` (a histogram: its sample count).
std::optional<double> Value(prometheus::Registry& registry, const std::string& name,
                            const prometheus::Labels& labels = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      if (!HasLabels(metric, labels)) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return metric.counter.value;
        case prometheus::MetricType::Gauge:
          return metric.gauge.value;
        case prometheus::MetricType::Histogram:
          return static_cast<double>(metric.histogram.sample_count);
        default:
          return std::nullopt;
      }
    }
  }
  return std::nullopt;
}

double Jobs(prometheus::Registry& registry, const std::string& state) {
  return Value(registry, "rlhf_jobs", {{"state", state}}).value_or(-1);
}

// Series of any family labelled job_id=`id`.
int SeriesOf(prometheus::Registry& registry, const std::string& id) {
  int n = 0;
  for (const auto& family : registry.Collect()) {
    for (const auto& metric : family.metric) n += HasLabels(metric, {{kJobIdLabel, id}});
  }
  return n;
}

double UnixSeconds(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

class JobMetricsTest : public ::testing::Test {
 protected:
  JobMetricsOptions FakeClock(Clock::duration grace) {
    JobMetricsOptions options;
    options.finished_series_grace = grace;
    options.now = [this] { return now_; };
    options.sweeper_thread = false;
    return options;
  }

  prometheus::Registry registry_;
  Clock::time_point now_ = Clock::time_point(seconds(1'700'000'000));
};

TEST_F(JobMetricsTest, CountsJobsByStateAndFailures) {
  JobMetrics metrics(registry_, FakeClock(seconds(60)), nullptr);
  for (const char* state : {"queued", "running", "succeeded", "failed", "cancelled"}) {
    EXPECT_EQ(Jobs(registry_, state), 0) << state;  // exported before any job
  }
  EXPECT_EQ(Value(registry_, "rlhf_job_failures_total"), 0);
  for (const char* id : {"a", "b", "c", "d"}) metrics.Submitted(id);
  EXPECT_EQ(Jobs(registry_, "queued"), 4);
  metrics.SetState("a", v1::JOB_STATE_RUNNING);
  metrics.SetState("a", v1::JOB_STATE_SUCCEEDED);
  metrics.SetState("b", v1::JOB_STATE_RUNNING);
  metrics.SetState("b", v1::JOB_STATE_FAILED);
  metrics.SetState("c", v1::JOB_STATE_CANCELLED);  // cancelled while queued
  metrics.SetState("d", v1::JOB_STATE_RUNNING);
  metrics.SetState("d", v1::JOB_STATE_RUNNING);  // repeated: no change
  EXPECT_EQ(Jobs(registry_, "queued"), 0);
  EXPECT_EQ(Jobs(registry_, "running"), 1);
  EXPECT_EQ(Jobs(registry_, "succeeded"), 1);
  EXPECT_EQ(Jobs(registry_, "failed"), 1);
  EXPECT_EQ(Jobs(registry_, "cancelled"), 1);
  EXPECT_EQ(Value(registry_, "rlhf_job_failures_total"), 1);

  // A terminal state is counted once; a late Submitted (the scheduler ran first) is ignored.
  metrics.SetState("b", v1::JOB_STATE_FAILED);
  metrics.SetState("b", v1::JOB_STATE_CANCELLED);
  metrics.SetState("e", v1::JOB_STATE_RUNNING);
  metrics.Submitted("e");
  metrics.Submitted("a");
  EXPECT_EQ(Jobs(registry_, "failed"), 1);
  EXPECT_EQ(Jobs(registry_, "cancelled"), 1);
  EXPECT_EQ(Jobs(registry_, "queued"), 0);
  EXPECT_EQ(Jobs(registry_, "running"), 2);
  EXPECT_EQ(Value(registry_, "rlhf_job_failures_total"), 1);

  // Requeued after an interrupted run: queued again, no longer running.
  metrics.SetState("d", v1::JOB_STATE_QUEUED);
  EXPECT_EQ(Jobs(registry_, "queued"), 1);
  EXPECT_EQ(Jobs(registry_, "running"), 1);
  EXPECT_EQ(Value(registry_, "rlhf_job_running", {{kJobIdLabel, "d"}}), 0);
}

TEST_F(JobMetricsTest, ProgressTimestampsThenSeriesRemovedAfterTheGrace) {
  TrainingMetrics training(registry_);
  JobMetrics metrics(registry_, FakeClock(seconds(60)), &training);
  metrics.Submitted("a");
  metrics.Submitted("b");
  EXPECT_EQ(SeriesOf(registry_, "a"), 0);  // queued jobs have no per-job series
  const Clock::time_point started = now_;
  metrics.SetState("a", v1::JOB_STATE_RUNNING);
  metrics.SetState("b", v1::JOB_STATE_RUNNING);
  EXPECT_EQ(Value(registry_, "rlhf_job_running", {{kJobIdLabel, "a"}}), 1);
  EXPECT_EQ(Value(registry_, "rlhf_job_last_progress_timestamp_seconds", {{kJobIdLabel, "a"}}),
            UnixSeconds(started));
  now_ += seconds(5);
  training.Record("a", {{"kl", 0.5}, {"reward_mean", 1.0}, {"time_train_seconds", 0.2}});
  metrics.RecordProgress("a");
  training.Record("b", {{"kl", 0.1}});
  metrics.RecordProgress("b");
  EXPECT_EQ(Value(registry_, "rlhf_job_last_progress_timestamp_seconds", {{kJobIdLabel, "a"}}),
            UnixSeconds(started) + 5);
  EXPECT_EQ(Value(registry_, "rlhf_training_kl", {{kJobIdLabel, "a"}}), 0.5);
  EXPECT_EQ(
      Value(registry_, "rlhf_training_stage_seconds", {{kJobIdLabel, "a"}, {kStageLabel, "train"}}),
      1);
  const int series_of_a = SeriesOf(registry_, "a");
  // running, last progress, kl, reward_mean, iterations_total, stage_seconds{train}.
  EXPECT_EQ(series_of_a, 6);

  now_ += seconds(10);
  metrics.SetState("a", v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(Value(registry_, "rlhf_job_running", {{kJobIdLabel, "a"}}), 0);
  now_ += seconds(59);
  metrics.RemoveExpired();
  EXPECT_EQ(SeriesOf(registry_, "a"), series_of_a);  // within the grace: all still there
  metrics.RecordProgress("a");                       // a finished job makes no progress
  EXPECT_EQ(Value(registry_, "rlhf_job_last_progress_timestamp_seconds", {{kJobIdLabel, "a"}}),
            UnixSeconds(started) + 5);
  now_ += seconds(1);
  metrics.RemoveExpired();
  EXPECT_EQ(SeriesOf(registry_, "a"), 0);
  EXPECT_EQ(Value(registry_, "rlhf_training_kl", {{kJobIdLabel, "b"}}), 0.1);  // b still runs
  EXPECT_EQ(Value(registry_, "rlhf_job_running", {{kJobIdLabel, "b"}}), 1);
  EXPECT_EQ(Jobs(registry_, "succeeded"), 1);  // the count stays
  EXPECT_EQ(Jobs(registry_, "running"), 1);
}

TEST_F(JobMetricsTest, CountStoredJobsReadsEveryPageOfTheStore) {
  test_support::TempDir dir("job_metrics_test");
  auto store = jobs::JobStore::Open((dir.path() / "jobs.sqlite").string());
  ASSERT_TRUE(store.ok()) << store.status();
  v1::JobSpec spec;
  spec.set_algorithm("sft");
  std::vector<std::string> ids;
  for (int i = 0; i < jobs::kMaxListPageSize + 5; ++i) {
    auto job = (*store)->Create(spec);
    ASSERT_TRUE(job.ok()) << job.status();
    ids.push_back(job->id());
  }
  auto end_as = [&](const std::string& id, v1::JobState state) {
    ASSERT_TRUE((*store)->Transition(id, v1::JOB_STATE_RUNNING).ok());
    if (state != v1::JOB_STATE_RUNNING) {
      ASSERT_TRUE((*store)->Transition(id, state).ok());
    }
  };
  end_as(ids[0], v1::JOB_STATE_SUCCEEDED);
  end_as(ids[1], v1::JOB_STATE_FAILED);
  end_as(ids[2], v1::JOB_STATE_FAILED);
  end_as(ids[3], v1::JOB_STATE_RUNNING);
  ASSERT_TRUE((*store)->Cancel(ids.back()).ok());  // on the second page

  JobMetrics metrics(registry_, FakeClock(seconds(60)), nullptr);
  ASSERT_TRUE(metrics.CountStoredJobs(**store).ok());
  EXPECT_EQ(Jobs(registry_, "queued"), jobs::kMaxListPageSize);
  EXPECT_EQ(Jobs(registry_, "running"), 1);
  EXPECT_EQ(Jobs(registry_, "succeeded"), 1);
  EXPECT_EQ(Jobs(registry_, "failed"), 2);
  EXPECT_EQ(Jobs(registry_, "cancelled"), 1);
  EXPECT_EQ(Value(registry_, "rlhf_job_failures_total"), 0);  // a counter of this process
  // The stored states are the starting point of later transitions.
  metrics.SetState(ids[3], v1::JOB_STATE_QUEUED);  // requeued by Start()
  metrics.SetState(ids[4], v1::JOB_STATE_RUNNING);
  metrics.Submitted(ids[5]);  // known already: not counted twice
  EXPECT_EQ(Jobs(registry_, "queued"), jobs::kMaxListPageSize);
  EXPECT_EQ(Jobs(registry_, "running"), 1);
}

TEST_F(JobMetricsTest, SweeperThreadRemovesFinishedSeries) {
  JobMetricsOptions options;
  options.finished_series_grace = std::chrono::milliseconds(50);
  JobMetrics metrics(registry_, options, nullptr);
  metrics.SetState("a", v1::JOB_STATE_RUNNING);
  metrics.SetState("a", v1::JOB_STATE_CANCELLED);
  for (int i = 0; i < 500 && SeriesOf(registry_, "a") > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(SeriesOf(registry_, "a"), 0);
  EXPECT_EQ(Jobs(registry_, "cancelled"), 1);
}

// Through the coordinator: one job succeeds (gpt2 fixture, in-process), one fails (its
// services cannot start), one is cancelled while queued.
TEST(CoordinatorJobMetricsTest, StatesFailuresRemovalAndRestart) {
  test_support::TempDir dir("coordinator_job_metrics_test");
  std::ofstream(dir.path() / "prompts.jsonl") << "{\"prompt\": \"hello world\"}\n"
                                              << "{\"prompt\": \"a b c\"}\n";
  CoordinatorOptions options;
  options.state_db = (dir.path() / "jobs.sqlite").string();
  options.finished_job_metrics_seconds = 3;
  auto local = LocalServicesFactory();
  options.in_process_services =
      [local](const v1::JobSpec& spec) -> absl::StatusOr<std::unique_ptr<InProcessServices>> {
    if (spec.name() == "fail") return absl::InternalError("no GPU left");
    return local(spec);
  };
  auto spec = [&](const std::string& name) {
    v1::JobSpec s;
    s.set_name(name);
    s.set_algorithm("ppo");
    s.mutable_models()->set_policy_dir(kModelDir);
    s.mutable_data()->set_train_path((dir.path() / "prompts.jsonl").string());
    s.mutable_training()->set_batch_size(2);
    s.mutable_training()->set_ppo_epochs(1);
    s.mutable_training()->set_iterations(1);
    s.mutable_generation()->set_max_prompt_tokens(8);
    s.mutable_generation()->set_max_response_tokens(4);
    s.mutable_reward()->set_kind("length");
    s.mutable_reward()->set_target_length(3);
    s.mutable_checkpoint()->set_dir((dir.path() / ("ckpt-" + name)).string());
    return s;
  };

  prometheus::Registry registry;
  auto created = Coordinator::Create(options, &registry);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<Coordinator> coordinator = std::move(*created);
  std::vector<std::string> ids;
  for (const char* name : {"ok", "fail", "cancel"}) {
    auto job = coordinator->Submit(spec(name), /*validate_only=*/false);
    ASSERT_TRUE(job.ok()) << job.status();
    ids.push_back(job->id());
  }
  ASSERT_TRUE(coordinator->Cancel(ids[2], "not needed").ok());
  EXPECT_EQ(Jobs(registry, "queued"), 2);
  EXPECT_EQ(Jobs(registry, "cancelled"), 1);

  const double before = UnixSeconds(Clock::now());
  ASSERT_TRUE(coordinator->Start().ok());
  auto ended = [&](const std::string& id) {
    auto job = coordinator->Get(id);
    return job.ok() && jobs::IsTerminal(job->state());
  };
  for (int i = 0; i < 1200 && !(ended(ids[0]) && ended(ids[1])); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(ended(ids[0]) && ended(ids[1])) << "the jobs did not end";
  ASSERT_EQ(coordinator->Get(ids[0])->state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(coordinator->Get(ids[1])->state(), v1::JOB_STATE_FAILED);
  // The gauges follow the stored state a moment later (the store is written first).
  for (int i = 0; i < 100 && (Jobs(registry, "running") != 0 || Jobs(registry, "failed") != 1 ||
                              Jobs(registry, "succeeded") != 1);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Jobs(registry, "queued"), 0);
  EXPECT_EQ(Jobs(registry, "running"), 0);
  EXPECT_EQ(Jobs(registry, "succeeded"), 1);
  EXPECT_EQ(Jobs(registry, "failed"), 1);
  EXPECT_EQ(Jobs(registry, "cancelled"), 1);
  EXPECT_EQ(Value(registry, "rlhf_job_failures_total"), 1);
  // Within the grace the finished job's series are still there (3 s; each check is ms).
  const auto progress =
      Value(registry, "rlhf_job_last_progress_timestamp_seconds", {{kJobIdLabel, ids[0]}});
  EXPECT_GE(progress.value_or(0), before);
  EXPECT_EQ(Value(registry, "rlhf_job_running", {{kJobIdLabel, ids[0]}}), 0);
  EXPECT_EQ(Value(registry, "rlhf_training_iterations_total", {{kJobIdLabel, ids[0]}}), 1);
  // Then they go, the counts stay.
  for (int i = 0; i < 200 && SeriesOf(registry, ids[0]) + SeriesOf(registry, ids[1]) > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(SeriesOf(registry, ids[0]), 0);
  EXPECT_EQ(SeriesOf(registry, ids[1]), 0);
  EXPECT_EQ(Jobs(registry, "succeeded"), 1);

  // A restarted coordinator counts the stored jobs; its failure counter starts at 0.
  coordinator.reset();
  prometheus::Registry restarted_registry;
  auto restarted = Coordinator::Create(options, &restarted_registry);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_EQ(Jobs(restarted_registry, "succeeded"), 1);
  EXPECT_EQ(Jobs(restarted_registry, "failed"), 1);
  EXPECT_EQ(Jobs(restarted_registry, "cancelled"), 1);
  EXPECT_EQ(Jobs(restarted_registry, "queued"), 0);
  EXPECT_EQ(Value(restarted_registry, "rlhf_job_failures_total"), 0);

  options.finished_job_metrics_seconds = -1;
  EXPECT_EQ(Coordinator::Create(options, &restarted_registry).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rlhf::coordinator
