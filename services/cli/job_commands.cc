#include "services/cli/job_commands.h"

#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>

#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/cli/flags.h"
#include "common/jobs/job_spec.h"
#include "common/jobs/job_state.h"
#include "common/rpc/client_security.h"
#include "common/rpc/status_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "rlhf/v1/job.grpc.pb.h"
#include "services/cli/job_events.h"

namespace rlhf::cli {
namespace {

std::string DefaultCoordinator() { return EnvOr("RLHF_COORDINATOR", "127.0.0.1:50051"); }

// Flags every client command shares: where the coordinator is and how to reach it
// (bearer token, TLS: common/rpc/client_security.h).
struct ClientFlags {
  std::string coordinator = DefaultCoordinator();
  double timeout_s = 30;
  rpc::ClientSecurityFlags security_flags;
  rpc::ClientSecurity security;  // loaded by Parse()
  void Register(FlagSet& flags) {
    flags.String("coordinator", &coordinator,
                 "coordinator address host:port (default: $RLHF_COORDINATOR or 127.0.0.1:50051)");
    flags.Float("timeout", &timeout_s, "seconds to wait for the coordinator");
    security_flags.Register(flags);
  }
  // ParseFlags, then reads the token and TLS files; -1 to go on, else the exit status.
  int Parse(FlagSet& flags, const std::vector<std::string>& args, const std::string& command,
            size_t positional) {
    if (int rc = ParseFlags(flags, args, command, positional); rc >= 0) return rc;
    auto loaded = security_flags.Load();
    if (!loaded.ok()) return Fail(command, loaded.status());
    security = *std::move(loaded);
    return -1;
  }
  std::shared_ptr<grpc::Channel> Channel() const { return rpc::MakeChannel(coordinator, security); }
  std::unique_ptr<v1::JobService::Stub> Stub() const { return v1::JobService::NewStub(Channel()); }
  void Prepare(grpc::ClientContext* context) const {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  }
  absl::Status Check(const grpc::Status& status) const {
    if (status.ok()) return absl::OkStatus();
    absl::Status s = rpc::FromGrpcStatus(status);
    if (s.code() == absl::StatusCode::kUnavailable ||
        s.code() == absl::StatusCode::kDeadlineExceeded) {
      return absl::Status(s.code(),
                          absl::StrCat("coordinator at ", coordinator, ": ", s.message()));
    }
    return s;
  }
};

std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return google::protobuf::util::TimeUtil::ToString(t).substr(0, 19);
}

void PrintJob(const v1::Job& job) {
  std::cout << "id:          " << job.id() << "\n"
            << "name:        " << job.spec().name() << "\n"
            << "algorithm:   " << job.spec().algorithm() << "\n"
            << "state:       " << jobs::JobStateName(job.state()) << "\n"
            << "progress:    " << job.iteration() << "/" << job.total_iterations() << "\n"
            << "created:     " << Time(job.created_time()) << "\n"
            << "started:     " << Time(job.started_time()) << "\n"
            << "finished:    " << Time(job.finished_time()) << "\n"
            << "checkpoint:  " << (job.checkpoint_path().empty() ? "-" : job.checkpoint_path())
            << "\n";
  if (!job.error_message().empty()) std::cout << "error:       " << job.error_message() << "\n";
  if (!job.latest_metrics().empty()) {
    std::cout << "metrics:\n";
    std::map<std::string, double> sorted(job.latest_metrics().begin(), job.latest_metrics().end());
    for (const auto& [name, value] : sorted) {
      std::cout << "  " << std::left << std::setw(26) << name << Number(value) << "\n";
    }
  }
}

absl::StatusOr<v1::JobState> ParseState(const std::string& text) {
  for (int s = v1::JOB_STATE_QUEUED; s <= v1::JOB_STATE_CANCELLED; ++s) {
    std::string name(jobs::JobStateName(static_cast<v1::JobState>(s)));
    std::string lower = name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (text == name || text == lower) return static_cast<v1::JobState>(s);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--state: '", text, "' is not one of queued, running, succeeded, failed, cancelled"));
}

// Reads a job file as the server will see it: JSON parsed, no defaults (the coordinator
// applies and validates them, reporting every bad field).
absl::StatusOr<v1::JobSpec> ReadJobFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read job file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return jobs::ParseJobSpecJson(text.str(), path);
}

}  // namespace

int RunSubmit(const std::vector<std::string>& args) {
  ClientFlags client;
  bool validate_only = false;
  FlagSet flags("rlhf submit",
                "Submits the job in JOB.json to the coordinator; prints its id.\n"
                "usage: rlhf submit JOB.json [flags]");
  client.Register(flags);
  flags.Bool("validate-only", &validate_only,
             "only validate: print the spec with defaults applied, store nothing");
  if (int rc = client.Parse(flags, args, "submit", 1); rc >= 0) return rc;
  auto spec = ReadJobFile(flags.positional()[0]);
  if (!spec.ok()) return Fail("submit", spec.status());
  v1::SubmitJobRequest request;
  *request.mutable_spec() = *spec;
  request.set_validate_only(validate_only);
  v1::SubmitJobResponse response;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (auto s = client.Check(client.Stub()->SubmitJob(&context, request, &response)); !s.ok()) {
    return Fail("submit", s);
  }
  if (validate_only) {
    auto json = jobs::JobSpecToJson(response.job().spec());
    if (!json.ok()) return Fail("submit", json.status());
    std::cout << *json << "\n";
    return 0;
  }
  std::cout << response.job().id() << "\n";
  return 0;
}

int RunStatus(const std::vector<std::string>& args) {
  ClientFlags client;
  FlagSet flags("rlhf status",
                "Prints a job's state, progress and latest metrics.\n"
                "usage: rlhf status JOB_ID [flags]");
  client.Register(flags);
  if (int rc = client.Parse(flags, args, "status", 1); rc >= 0) return rc;
  v1::GetJobRequest request;
  request.set_id(flags.positional()[0]);
  v1::Job job;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (auto s = client.Check(client.Stub()->GetJob(&context, request, &job)); !s.ok()) {
    return Fail("status", s);
  }
  PrintJob(job);
  return 0;
}

int RunList(const std::vector<std::string>& args) {
  ClientFlags client;
  std::string state;
  int64_t page_size = 50;
  FlagSet flags("rlhf list", "Lists jobs in submission order.\nusage: rlhf list [flags]");
  client.Register(flags);
  flags.String("state", &state, "only jobs in this state (queued, running, succeeded, ...)");
  flags.Int("page-size", &page_size, "jobs per request (the command fetches every page)");
  if (int rc = client.Parse(flags, args, "list", 0); rc >= 0) return rc;
  v1::ListJobsRequest request;
  if (!state.empty()) {
    auto parsed = ParseState(state);
    if (!parsed.ok()) return Fail("list", parsed.status());
    request.add_states(*parsed);
  }
  request.set_page_size(static_cast<int32_t>(page_size));
  auto stub = client.Stub();
  std::cout << std::left << std::setw(34) << "ID" << std::setw(11) << "STATE" << std::setw(13)
            << "ALGORITHM" << std::setw(10) << "PROGRESS"
            << "NAME\n";
  do {
    v1::ListJobsResponse response;
    grpc::ClientContext context;
    client.Prepare(&context);
    if (auto s = client.Check(stub->ListJobs(&context, request, &response)); !s.ok()) {
      return Fail("list", s);
    }
    for (const v1::Job& job : response.jobs()) {
      std::cout << std::left << std::setw(34) << job.id() << std::setw(11)
                << jobs::JobStateName(job.state()) << std::setw(13) << job.spec().algorithm()
                << std::setw(10) << absl::StrCat(job.iteration(), "/", job.total_iterations())
                << job.spec().name() << "\n";
    }
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  return 0;
}

int RunCancel(const std::vector<std::string>& args) {
  ClientFlags client;
  std::string reason;
  FlagSet flags("rlhf cancel",
                "Cancels a queued or running job.\nusage: rlhf cancel JOB_ID [flags]");
  client.Register(flags);
  flags.String("reason", &reason, "recorded with the job");
  if (int rc = client.Parse(flags, args, "cancel", 1); rc >= 0) return rc;
  v1::CancelJobRequest request;
  request.set_id(flags.positional()[0]);
  request.set_reason(reason);
  v1::Job job;
  grpc::ClientContext context;
  client.Prepare(&context);
  if (auto s = client.Check(client.Stub()->CancelJob(&context, request, &job)); !s.ok()) {
    return Fail("cancel", s);
  }
  std::cout << job.id() << " " << jobs::JobStateName(job.state()) << "\n";
  return 0;
}

int RunWatch(const std::vector<std::string>& args) {
  ClientFlags client;
  FlagSet flags("rlhf watch",
                "Follows a job: one line per iteration until it ends; exit 0 when\n"
                "it succeeded.\nusage: rlhf watch JOB_ID [flags]");
  client.Register(flags);
  std::string metrics_jsonl;
  flags.String("metrics-jsonl", &metrics_jsonl,
               "write each iteration's metrics to this file, one JSON object per line");
  if (int rc = client.Parse(flags, args, "watch", 1); rc >= 0) return rc;
  std::ofstream metrics_out;
  if (auto s = OpenMetricsJsonl(metrics_jsonl, &metrics_out); !s.ok()) return Fail("watch", s);
  v1::WatchJobRequest request;
  request.set_id(flags.positional()[0]);
  grpc::ClientContext context;  // no deadline: a job may run for days
  auto stub = client.Stub();
  {
    // Fail fast when the coordinator is not there at all.
    auto channel = client.Channel();
    if (!channel->WaitForConnected(
            std::chrono::system_clock::now() +
            std::chrono::milliseconds(static_cast<int64_t>(client.timeout_s * 1000)))) {
      return Fail("watch", absl::UnavailableError(absl::StrCat("cannot reach the coordinator at ",
                                                               client.coordinator)));
    }
  }
  auto reader = stub->WatchJob(&context, request);
  const int rc =
      FollowEvents([&](v1::JobEvent* e) { return reader->Read(e); }, "watch", metrics_out);
  if (auto s = client.Check(reader->Finish()); !s.ok()) return Fail("watch", s);
  return rc;
}

int RunHealth(const std::vector<std::string>& args) {
  std::string service;
  double timeout_s = 10;
  FlagSet flags("rlhf health",
                "Asks a server for its grpc.health.v1 status; exit 0 when SERVING.\n"
                "usage: rlhf health HOST:PORT [flags]");
  flags.String("service", &service, "service name to ask about (default: the whole server)");
  flags.Float("timeout", &timeout_s, "seconds to wait for an answer");
  rpc::ClientSecurityFlags security_flags;  // health is open, but TLS must match
  security_flags.Register(flags);
  if (int rc = ParseFlags(flags, args, "health", 1); rc >= 0) return rc;
  auto security = security_flags.Load();
  if (!security.ok()) return Fail("health", security.status());
  const std::string& address = flags.positional()[0];
  auto stub = grpc::health::v1::Health::NewStub(rpc::MakeChannel(address, *security));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return Fail("health",
                absl::UnavailableError(absl::StrCat(address, ": ", status.error_message())));
  }
  std::cout << address << ": "
            << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()) << "\n";
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}

}  // namespace rlhf::cli
