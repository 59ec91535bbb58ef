// One test per ready-made scenario (fake_server/scenarios/*.textproto): each
// runs the standalone binary with it and checks the effect through the real
// client, reading the server's journal through the control service.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/auth.h"
#include "client/client.h"
#include "client/clock.h"
#include "client/errors.h"
#include "fake_server/control.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/scenarios/server_process.h"

namespace workflows {
namespace testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::workflows::fake::FakeControl;
using ::workflows::fake::GetJournalRequest;
using ::workflows::fake::GetJournalResponse;
using ::workflows::fake::RecordedCall;

constexpr char kSeededWorkflow[] = "ci@example.com:ndvi";
constexpr char kGraft[] = R"({"returns": 1})";
// gRPC converts the server's deadline between its monotonic clock and the
// wall clock; allow for the drift between the two readings.
constexpr absl::Duration kClockSlack = absl::Milliseconds(10);

class ScenarioTest : public ::testing::Test {
 protected:
  // Starts the binary with the named ready-made scenario.
  void StartScenario(const std::string& name,
                     std::vector<std::string> extra_args = {}) {
    extra_args.push_back("--scenario=" + ScenarioPath(name));
    absl::StatusOr<std::unique_ptr<ServerProcess>> started =
        ServerProcess::Start(extra_args);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    control_ = fake::FakeControl::NewStub(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    absl::StatusOr<ProcessResult> stopped = server_->Stop(SIGTERM);
    ASSERT_TRUE(stopped.ok()) << stopped.status();
    EXPECT_EQ(stopped->exit_code, 0) << stopped->stderr_text;
  }

  // A client of the server whose backoff sleeps are simulated (instant and
  // recorded).
  std::unique_ptr<Client> MakeClient(std::shared_ptr<Auth> auth = nullptr) {
    ClientOptions options;
    options.host = "127.0.0.1";
    options.port = server_->port();
    options.use_insecure_channel = true;
    options.clock = clock_;
    options.auth = auth != nullptr ? std::move(auth)
                                   : std::make_shared<StaticTokenAuth>("t");
    options.send_token_on_insecure_channel = true;
    return std::make_unique<Client>(options);
  }

  std::vector<RecordedCall> Journal(const std::string& method) {
    grpc::ClientContext context;
    GetJournalRequest request;
    request.set_method(method);
    GetJournalResponse response;
    grpc::Status status = control_->GetJournal(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return {response.journal().calls().begin(),
            response.journal().calls().end()};
  }

  static std::vector<std::string> Codes(
      const std::vector<RecordedCall>& calls) {
    std::vector<std::string> codes;
    for (const RecordedCall& call : calls) codes.push_back(call.status_code());
    return codes;
  }

  static wf::GetWorkflowRequest GetSeeded() {
    wf::GetWorkflowRequest request;
    request.set_id(kSeededWorkflow);
    return request;
  }

  static wf::CreateJobRequest NewJob() {
    wf::CreateJobRequest request;
    request.set_serialized_graft(kGraft);
    return request;
  }

  std::shared_ptr<SimulatedClock> clock_ = std::make_shared<SimulatedClock>();
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<FakeControl::Stub> control_;
};

TEST_F(ScenarioTest, Healthy) {
  StartScenario("healthy");
  std::unique_ptr<Client> client = MakeClient();
  absl::StatusOr<health::HealthCheckResponse::ServingStatus> health =
      client->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, health::HealthCheckResponse::SERVING);
  CallResult<wf::Workflow> workflow = client->GetWorkflow(GetSeeded());
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  EXPECT_EQ(workflow->title(), "NDVI");
  EXPECT_THAT(Codes(Journal("GetWorkflow")), ElementsAre("OK"));
}

TEST_F(ScenarioTest, NotServing) {
  StartScenario("not_serving");
  std::unique_ptr<Client> client = MakeClient();
  absl::StatusOr<health::HealthCheckResponse::ServingStatus> health =
      client->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, health::HealthCheckResponse::NOT_SERVING);
  health::HealthCheckRequest request;
  request.set_service("descarteslabs.workflows.JobAPI");
  CallResult<health::HealthCheckResponse> job_api = client->Check(request);
  ASSERT_TRUE(job_api.ok()) << job_api.status();
  EXPECT_EQ(job_api->status(), health::HealthCheckResponse::NOT_SERVING);
}

TEST_F(ScenarioTest, FlakyUnavailableSucceedsOnTheThirdAttempt) {
  StartScenario("flaky_unavailable");
  std::unique_ptr<Client> client = MakeClient();
  CallResult<wf::Workflow> workflow = client->GetWorkflow(GetSeeded());
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  EXPECT_THAT(Codes(Journal("GetWorkflow")),
              ElementsAre("UNAVAILABLE", "UNAVAILABLE", "OK"));
  // Two backoffs, on the simulated clock.
  EXPECT_EQ(clock_->sleeps().size(), 2u);
}

TEST_F(ScenarioTest, RateLimitedCreateJobHonoursPushback) {
  StartScenario("rate_limited");
  std::unique_ptr<Client> client = MakeClient();
  // The default CreateJob policy does not retry 429.
  CallResult<wf::Job> refused = client->CreateJob(NewJob());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  std::optional<absl::Duration> pushback = RetryPushback(refused.status());
  ASSERT_TRUE(pushback.has_value()) << refused.status();
  EXPECT_EQ(*pushback, absl::Milliseconds(250));
  // With retries it waits the pushback (plus jitter) and gets through.
  CallOptions options;
  options.num_retries = 3;
  CallResult<wf::Job> created = client->CreateJob(NewJob(), options);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(Codes(Journal("CreateJob")),
              ElementsAre("RESOURCE_EXHAUSTED", "RESOURCE_EXHAUSTED", "OK"));
  ASSERT_EQ(clock_->sleeps().size(), 1u);
  EXPECT_GE(clock_->sleeps()[0], absl::Milliseconds(250));
}

TEST_F(ScenarioTest, PermissionDeniedRetryAfterIsWaitedOut) {
  StartScenario("permission_denied_retry_after");
  std::unique_ptr<Client> client = MakeClient();
  CallResult<wf::Workflow> workflow = client->GetWorkflow(GetSeeded());
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  EXPECT_THAT(Codes(Journal("GetWorkflow")),
              ElementsAre("PERMISSION_DENIED", "OK"));
  EXPECT_THAT(clock_->sleeps(), ElementsAre(absl::Seconds(2)));
}

TEST_F(ScenarioTest, AuthRequired) {
  StartScenario("auth_required");
  wf::GetJobRequest request;
  request.set_id("no-such-job");
  CallOptions once;
  once.retry = RetryPolicy::None();
  // A valid token reaches the backend (which has no such job).
  EXPECT_EQ(MakeClient(std::make_shared<StaticTokenAuth>("good-token"))
                ->GetJob(request, once)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  absl::Status expired =
      MakeClient(std::make_shared<StaticTokenAuth>("expired-token"))
          ->GetJob(request, once)
          .status();
  EXPECT_EQ(expired.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(expired.message(), HasSubstr("expired"));
  EXPECT_EQ(MakeClient(std::make_shared<StaticTokenAuth>("viewer-token"))
                ->GetJob(request, once)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(MakeClient(std::make_shared<StaticTokenAuth>("stolen"))
                ->GetJob(request, once)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  // Health probes need no token.
  absl::StatusOr<health::HealthCheckResponse::ServingStatus> health =
      MakeClient()->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  std::vector<RecordedCall> calls = Journal("GetJob");
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[1].rule(), "auth_policy");
}

TEST_F(ScenarioTest, SlowTimesOutAtOnceWithTheClientsDeadline) {
  StartScenario("slow");
  std::unique_ptr<Client> client = MakeClient();
  CallOptions once;
  once.retry = RetryPolicy::None();
  const absl::Time start = absl::Now();
  CallResult<wf::Workflow> workflow = client->GetWorkflow(GetSeeded(), once);
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(workflow.status().code(), absl::StatusCode::kDeadlineExceeded);
  std::vector<RecordedCall> calls = Journal("GetWorkflow");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].status_code(), "DEADLINE_EXCEEDED");
  // The 30 s delay outlasts the 5 s default deadline: the server answered at
  // once instead of waiting (its message says so). Checked on the server's
  // answer and relative to `took`, not against wall-clock budgets: a fresh
  // TCP connect under TSan on a loaded 2-core machine can take seconds.
  EXPECT_THAT(calls[0].status_message(),
              HasSubstr("outlasts the client's deadline"));
  // The client sent its 5 s default timeout: what was left when the call
  // arrived is 5 s less the time the call took to get there (at most
  // `took`), and never more than 5 s (gRPC sends a 5 s timeout exactly).
  const absl::Duration remaining =
      absl::Seconds(calls[0].deadline_remaining().seconds()) +
      absl::Nanoseconds(calls[0].deadline_remaining().nanos());
  EXPECT_GE(remaining, Client::kDefaultTimeout - took - kClockSlack);
  EXPECT_LE(remaining, Client::kDefaultTimeout + kClockSlack);
}

TEST_F(ScenarioTest, WatchInterruptedStillSeesTheJobSucceed) {
  // On a simulated clock the job stays QUEUED until the test moves time, so
  // the first watch reliably sees QUEUED, then (after the advance) one more
  // state before the scripted break.
  StartScenario("watch_interrupted", {"--simulated_clock"});
  std::unique_ptr<Client> client = MakeClient();
  CallResult<wf::Job> job = client->CreateJob(NewJob());
  ASSERT_TRUE(job.ok()) << job.status();
  std::vector<wf::Job::Stage> seen;
  WaitOptions options;
  options.on_state = [&](const wf::Job::State& state) {
    if (seen.empty()) {
      grpc::ClientContext context;
      fake::AdvanceClockRequest request;
      request.mutable_duration()->set_seconds(3600);
      fake::AdvanceClockResponse response;
      grpc::Status advanced =
          control_->AdvanceClock(&context, request, &response);
      EXPECT_TRUE(advanced.ok()) << advanced.error_message();
    }
    seen.push_back(state.stage());
  };
  absl::StatusOr<wf::Job::State> done =
      client->WaitForJob(job->id(), absl::Seconds(30), options);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->stage(), wf::Job::SUCCEEDED);
  EXPECT_EQ(seen.front(), wf::Job::QUEUED);
  EXPECT_EQ(seen.back(), wf::Job::SUCCEEDED);
  // The client may return on the SUCCEEDED message before the server ends
  // the second stream; wait for the server's view.
  {
    grpc::ClientContext context;
    fake::WaitForCallsRequest request;
    request.set_method("WatchJob");
    request.set_count(2);
    request.mutable_timeout()->set_seconds(10);
    fake::WaitForCallsResponse response;
    grpc::Status waited = control_->WaitForCalls(&context, request, &response);
    ASSERT_TRUE(waited.ok()) << waited.error_message();
  }
  std::vector<RecordedCall> watches = Journal("WatchJob");
  ASSERT_EQ(watches.size(), 2u);
  EXPECT_EQ(watches[0].status_code(), "UNAVAILABLE");
  EXPECT_EQ(watches[0].responses_size(), 2);
  EXPECT_EQ(watches[1].status_code(), "OK");
}

TEST_F(ScenarioTest, WarningsReachTheCaller) {
  StartScenario("warnings");
  std::unique_ptr<Client> client = MakeClient();
  CallResult<wf::Workflow> workflow = client->GetWorkflow(GetSeeded());
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  EXPECT_THAT(workflow.warnings(), ElementsAre("channel v0-19 is deprecated",
                                               "upgrade your client"));
  CallResult<wf::Job> job = client->CreateJob(NewJob());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_THAT(job.warnings(), ElementsAre("channel v0-19 is deprecated"));
}

TEST_F(ScenarioTest, JobFailsOom) {
  StartScenario("job_fails_oom");
  std::unique_ptr<Client> client = MakeClient();
  CallResult<wf::Job> job = client->CreateJob(NewJob());
  ASSERT_TRUE(job.ok()) << job.status();
  absl::StatusOr<wf::Job::State> done =
      client->WaitForJob(job->id(), absl::Seconds(30));
  ASSERT_FALSE(done.ok());
  EXPECT_EQ(JobErrorCode(done.status()), wf::ERROR_OOM) << done.status();
  EXPECT_THAT(done.status().message(), HasSubstr("8 GiB"));
}

TEST_F(ScenarioTest, JobCancelled) {
  StartScenario("job_cancelled");
  std::unique_ptr<Client> client = MakeClient();
  CallResult<wf::Job> job = client->CreateJob(NewJob());
  ASSERT_TRUE(job.ok()) << job.status();
  std::vector<wf::Job::Stage> stages;
  absl::StatusOr<wf::Job::State> done = client->WaitForJob(
      job->id(), absl::Seconds(30),
      {.on_state = [&](const wf::Job::State& state) {
        if (stages.empty() || stages.back() != state.stage()) {
          stages.push_back(state.stage());
        }
      }});
  EXPECT_EQ(done.status(), JobCancelledError(job->id()));
  ASSERT_FALSE(stages.empty());
  EXPECT_EQ(stages.back(), wf::Job::CANCELLED);
  // Never past PREPARING, where the plan cancels it.
  for (wf::Job::Stage stage : stages) {
    EXPECT_NE(stage, wf::Job::RUNNING);
    EXPECT_NE(stage, wf::Job::SUCCEEDED);
  }
}

}  // namespace
}  // namespace testing
}  // namespace workflows
