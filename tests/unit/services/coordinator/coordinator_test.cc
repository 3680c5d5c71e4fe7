// JobService over an in-process channel to a real Coordinator (SQLite store in a temp
// dir), and RunJob over in-process services with the gpt2 fixture model.

#include <fstream>

#include <gtest/gtest.h>

#include "common/jobs/job_spec.h"
#include "common/server/server_runner.h"
#include "services/coordinator/coordinator.h"
#include "services/coordinator/job_runner.h"
#include "services/coordinator/job_service.h"
#include "services/local/local_services.h"
#include "tests/unit/server/server_test_util.h"
#include "tests/unit/testing/temp_dir.h"

namespace rlhf::coordinator {
namespace {

using server::testing::DeadlineIn;
using server::testing::LoopbackOptions;

constexpr char kModelDir[] = RLHF_SOURCE_DIR "/tests/golden/fixtures/models/gpt2";

class CoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.path() / "prompts.jsonl") << "{\"prompt\": \"hello world\"}\n"
                                                 << "{\"prompt\": \"a b c\"}\n";
    CoordinatorOptions options;
    options.state_db = (dir_.path() / "jobs.sqlite").string();
    options.in_process_services = LocalServicesFactory();
    auto created = Coordinator::Create(options, &registry_);
    ASSERT_TRUE(created.ok()) << created.status();
    coordinator_ = std::move(*created);
    runner_ = std::make_unique<server::ServerRunner>(LoopbackOptions(/*metrics=*/false));
    service_ = std::make_unique<JobService>(runner_->Executor("rlhf.v1.JobService"));
    service_->SetCoordinator(coordinator_);
    runner_->AddService(service_.get());
    ASSERT_TRUE(runner_->Start().ok());
    stub_ = v1::JobService::NewStub(runner_->InProcessChannel());
  }
  void TearDown() override {
    stub_.reset();
    coordinator_->Stop();
    runner_->Shutdown();
  }

  v1::JobSpec PpoSpec(int iterations) {
    v1::JobSpec spec;
    spec.set_name("unit");
    spec.set_algorithm("ppo");
    spec.mutable_models()->set_policy_dir(kModelDir);
    spec.mutable_data()->set_train_path((dir_.path() / "prompts.jsonl").string());
    spec.mutable_training()->set_batch_size(2);
    spec.mutable_training()->set_ppo_epochs(1);
    spec.mutable_training()->set_iterations(iterations);
    spec.mutable_generation()->set_max_prompt_tokens(8);
    spec.mutable_generation()->set_max_response_tokens(4);
    spec.mutable_reward()->set_kind("length");
    spec.mutable_reward()->set_target_length(3);
    spec.mutable_checkpoint()->set_dir((dir_.path() / "ckpt").string());
    spec.mutable_checkpoint()->set_interval(1);
    return spec;
  }

  grpc::Status Submit(const v1::JobSpec& spec, bool validate_only, v1::Job* job) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(std::chrono::seconds(30)));
    v1::SubmitJobRequest request;
    *request.mutable_spec() = spec;
    request.set_validate_only(validate_only);
    v1::SubmitJobResponse response;
    grpc::Status status = stub_->SubmitJob(&context, request, &response);
    *job = response.job();
    return status;
  }

  grpc::Status List(int page_size, const std::string& token, v1::ListJobsResponse* response,
                    std::vector<v1::JobState> states = {}) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(std::chrono::seconds(30)));
    v1::ListJobsRequest request;
    request.set_page_size(page_size);
    request.set_page_token(token);
    for (v1::JobState s : states) request.add_states(s);
    return stub_->ListJobs(&context, request, response);
  }

  test_support::TempDir dir_{"coordinator_test"};
  prometheus::Registry registry_;
  std::shared_ptr<Coordinator> coordinator_;
  std::unique_ptr<server::ServerRunner> runner_;
  std::unique_ptr<JobService> service_;
  std::unique_ptr<v1::JobService::Stub> stub_;
};

TEST_F(CoordinatorTest, ValidateOnlyReturnsDefaultsAndStoresNothing) {
  v1::Job job;
  ASSERT_TRUE(Submit(PpoSpec(2), /*validate_only=*/true, &job).ok());
  EXPECT_TRUE(job.id().empty());
  EXPECT_EQ(job.spec().ppo().gae_lambda(), 0.95);
  EXPECT_EQ(job.spec().models().reference_dir(), kModelDir);
  v1::ListJobsResponse list;
  ASSERT_TRUE(List(0, "", &list).ok());
  EXPECT_EQ(list.jobs_size(), 0);
}

TEST_F(CoordinatorTest, InvalidSpecNamesEveryBadField) {
  v1::JobSpec spec = PpoSpec(2);
  spec.mutable_optimizer()->set_learning_rate(-1);
  spec.mutable_data()->set_train_path((dir_.path() / "missing.jsonl").string());
  v1::Job job;
  grpc::Status status = Submit(spec, false, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("optimizer.learning_rate"), std::string::npos);
  EXPECT_NE(status.error_message().find("data.train_path"), std::string::npos);
}

TEST_F(CoordinatorTest, ListPagesCancelAndGetErrors) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {  // the scheduler is not started: the jobs stay queued
    v1::Job job;
    ASSERT_TRUE(Submit(PpoSpec(1), false, &job).ok());
    EXPECT_EQ(job.state(), v1::JOB_STATE_QUEUED);
    ids.push_back(job.id());
  }
  v1::ListJobsResponse first, second;
  ASSERT_TRUE(List(2, "", &first).ok());
  ASSERT_EQ(first.jobs_size(), 2);
  EXPECT_EQ(first.jobs(0).id(), ids[0]);
  ASSERT_FALSE(first.next_page_token().empty());
  ASSERT_TRUE(List(2, first.next_page_token(), &second).ok());
  ASSERT_EQ(second.jobs_size(), 1);
  EXPECT_EQ(second.jobs(0).id(), ids[2]);
  EXPECT_TRUE(second.next_page_token().empty());

  grpc::ClientContext cancel_context;
  v1::CancelJobRequest cancel;
  cancel.set_id(ids[1]);
  cancel.set_reason("not needed");
  v1::Job cancelled;
  ASSERT_TRUE(stub_->CancelJob(&cancel_context, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
  grpc::ClientContext again_context;
  EXPECT_EQ(stub_->CancelJob(&again_context, cancel, &cancelled).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);

  v1::ListJobsResponse queued;
  ASSERT_TRUE(List(0, "", &queued, {v1::JOB_STATE_QUEUED}).ok());
  EXPECT_EQ(queued.jobs_size(), 2);
  v1::ListJobsResponse bad;
  EXPECT_EQ(List(0, "not-a-token", &bad).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  grpc::ClientContext get_context;
  v1::GetJobRequest get;
  get.set_id("job-unknown");
  v1::Job unknown;
  EXPECT_EQ(stub_->GetJob(&get_context, get, &unknown).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(CoordinatorTest, WatchStreamsEveryIterationThenTheEnd) {
  v1::Job job;
  ASSERT_TRUE(Submit(PpoSpec(3), false, &job).ok());
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(std::chrono::seconds(120)));
  v1::WatchJobRequest request;
  request.set_id(job.id());
  auto reader = stub_->WatchJob(&context, request);
  ASSERT_TRUE(coordinator_->Start().ok());
  std::vector<int64_t> iterations;
  v1::JobEvent event, last;
  while (reader->Read(&event)) {
    if (event.state() == v1::JOB_STATE_RUNNING && event.iteration() > 0) {
      iterations.push_back(event.iteration());
      EXPECT_EQ(event.metrics().count("reward_mean"), 1u);
      EXPECT_FALSE(event.checkpoint_path().empty());  // interval 1
    }
    last = event;
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(last.state(), v1::JOB_STATE_SUCCEEDED) << last.message();
  EXPECT_EQ(iterations, (std::vector<int64_t>{1, 2, 3}));

  auto stored = coordinator_->Get(job.id());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->iteration(), 3);
  EXPECT_GT(stored->latest_metrics().at("policy_version"), 0);
  EXPECT_TRUE(std::filesystem::exists(dir_.path() / "ckpt" / "final" / "model.safetensors"));
  // Training metrics labelled with the job id are in the registry.
  bool found = false;
  for (const auto& family : registry_.Collect()) {
    if (family.name != "rlhf_training_reward_mean") continue;
    for (const auto& metric : family.metric) {
      for (const auto& label : metric.label) found |= label.value == job.id();
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(CoordinatorTest, CancellingARunningJobStopsIt) {
  v1::Job job;
  ASSERT_TRUE(Submit(PpoSpec(100000), false, &job).ok());
  ASSERT_TRUE(coordinator_->Start().ok());
  int64_t running_at = 0;
  for (int i = 0; i < 600 && running_at < 1; ++i) {
    auto current = coordinator_->Get(job.id());
    if (current.ok()) running_at = current->iteration();
    if (running_at < 1) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(running_at, 1) << "the job never ran an iteration";
  auto cancelled = coordinator_->Cancel(job.id(), "enough");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->state(), v1::JOB_STATE_CANCELLED);
  coordinator_->Stop();  // returns once the loop noticed
  auto after = coordinator_->Get(job.id());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state(), v1::JOB_STATE_CANCELLED);
  // It ran, then stopped within an iteration or two of the cancel: nowhere near the end.
  EXPECT_GE(after->iteration(), running_at);
  EXPECT_LE(after->iteration(), running_at + 2);
  EXPECT_EQ(after->total_iterations(), 100000);
}

TEST(RunJobTest, UnreachableServiceFailsWithinTheConnectTimeout) {
  v1::Job job;
  job.set_id("job-x");
  v1::JobSpec* spec = job.mutable_spec();
  spec->set_algorithm("ppo");
  spec->mutable_models()->set_policy_dir(kModelDir);
  test_support::TempDir dir("runjob_test");
  std::ofstream(dir.path() / "p.jsonl") << "{\"prompt\": \"hi\"}\n";
  spec->mutable_data()->set_train_path((dir.path() / "p.jsonl").string());
  jobs::ApplyJobSpecDefaults(spec);
  v1::EndpointsSpec endpoints;
  for (auto* field :
       {endpoints.mutable_actor(), endpoints.mutable_reference(), endpoints.mutable_reward()}) {
    *field = "127.0.0.1:1";
  }
  endpoints.add_rollout("127.0.0.1:1");
  ClientOptions options;
  options.connect_timeout = std::chrono::milliseconds(500);
  auto channels = RemoteChannels(endpoints, options);
  ASSERT_TRUE(channels.ok());
  ServiceClients clients(std::move(*channels), options);
  RunHooks hooks;
  hooks.on_iteration = [](const IterationReport&) { return absl::OkStatus(); };
  const auto start = std::chrono::steady_clock::now();
  absl::Status status = RunJob(job, clients, hooks);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(status.message().find("cannot reach the actor service at 127.0.0.1:1"),
            std::string::npos)
      << status;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace rlhf::coordinator
