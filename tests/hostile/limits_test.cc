// Parsing limits and time arithmetic of the standalone fake server, through
// its control service: scenario text nested 10,000 levels deep (it used to
// overflow the parser's stack and kill the server), scenario text over the
// size cap, and AdvanceClock(seconds = INT64_MAX) on a simulated clock
// (which used to send the next GetJob into an endless loop under the
// backend's lock). Each is refused with INVALID_ARGUMENT or OUT_OF_RANGE
// naming the limit, changes nothing, and the server keeps serving.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/control.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/job.grpc.pb.h"
#include "testing/matchers.h"
#include "tests/scenarios/server_process.h"

namespace workflows {
namespace testing {
namespace {

namespace wf = ::descarteslabs::workflows;
using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Every call gets this long; a server stuck in a loop answers none in time.
constexpr auto kCallTimeout = std::chrono::seconds(10);

// A GetJob rule replying a Job whose typespec nests `levels` map keys: 5 + 3
// * `levels` levels of messages, all on line 7.
std::string DeepScenario(int levels) {
  std::string text =
      "rules {\n  method: \"GetJob\"\n  behavior {\n    reply {\n"
      "      [type.googleapis.com/descarteslabs.workflows.Job] {\n"
      "        typespec {\n";
  for (int i = 0; i < levels; ++i) absl::StrAppend(&text, "map{items{key{");
  for (int i = 0; i < levels; ++i) absl::StrAppend(&text, "}}}");
  absl::StrAppend(&text, "\n        }\n      }\n    }\n  }\n}\n");
  return text;
}

// GetJob fails UNAVAILABLE "scripted": shows which rules are loaded.
constexpr char kScriptedGetJob[] = R"pb(
  rules {
    method: "GetJob"
    behavior { fail { code: "UNAVAILABLE" message: "scripted" } }
  }
)pb";

class LimitsTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> args) {
    absl::StatusOr<std::unique_ptr<ServerProcess>> server =
        ServerProcess::Start(args);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto channel = grpc::CreateChannel(server_->address(),
                                       grpc::InsecureChannelCredentials());
    control_ = fake::FakeControl::NewStub(channel);
    jobs_ = wf::JobAPI::NewStub(channel);
    health_ = Health::NewStub(channel);
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    absl::StatusOr<ProcessResult> result = server_->Stop(SIGTERM);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  }

  static void SetDeadline(grpc::ClientContext* context) {
    context->set_deadline(std::chrono::system_clock::now() + kCallTimeout);
  }

  grpc::Status Load(const std::string& text,
                    const std::string& source = "test.textproto") {
    grpc::ClientContext context;
    SetDeadline(&context);
    fake::LoadScenarioRequest request;
    request.set_scenario_text(text);
    request.set_source_name(source);
    fake::LoadScenarioResponse response;
    return control_->LoadScenario(&context, request, &response);
  }

  grpc::Status Advance(int64_t seconds, int32_t nanos = 0,
                       fake::AdvanceClockResponse* response = nullptr) {
    grpc::ClientContext context;
    SetDeadline(&context);
    fake::AdvanceClockRequest request;
    request.mutable_duration()->set_seconds(seconds);
    request.mutable_duration()->set_nanos(nanos);
    fake::AdvanceClockResponse ignored;
    return control_->AdvanceClock(&context, request,
                                  response ? response : &ignored);
  }

  grpc::Status GetJob(const std::string& id, wf::Job* job) {
    grpc::ClientContext context;
    SetDeadline(&context);
    wf::GetJobRequest request;
    request.set_id(id);
    return jobs_->GetJob(&context, request, job);
  }

  void ExpectServing() {
    grpc::ClientContext context;
    SetDeadline(&context);
    HealthCheckResponse response;
    grpc::Status status =
        health_->Check(&context, HealthCheckRequest(), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  }

  // The kScriptedGetJob rule is still the one deciding GetJob.
  void ExpectScriptedRuleStillLoaded() {
    wf::Job job;
    grpc::Status status = GetJob("any", &job);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_EQ(status.error_message(), "scripted");
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<fake::FakeControl::Stub> control_;
  std::unique_ptr<wf::JobAPI::Stub> jobs_;
  std::unique_ptr<Health::Stub> health_;
};

TEST_F(LimitsTest, ScenarioNested10000DeepIsRefusedAndChangesNothing) {
  Start({});
  ASSERT_THAT(Load(kScriptedGetJob), ::workflows::testing::IsOk());

  const std::string deep = DeepScenario(10000);
  ASSERT_GT(deep.size(), 150000u);  // Still under gRPC's 4 MiB.
  grpc::Status status = Load(deep, "deep.textproto");

  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              AllOf(HasSubstr("deep.textproto:7:"),
                    HasSubstr("nesting limit of 100 levels exceeded "
                              "(--max_scenario_depth)")));
  ExpectServing();
  ExpectScriptedRuleStillLoaded();
}

TEST_F(LimitsTest, ScenarioOverTheSizeCapIsRefusedAndChangesNothing) {
  Start({});
  ASSERT_THAT(Load(kScriptedGetJob), ::workflows::testing::IsOk());

  // 2 MiB: over the 1 MiB default cap, under gRPC's 4 MiB message limit.
  const std::string huge = absl::StrCat(kScriptedGetJob, "description: \"",
                                        std::string(2 << 20, 'x'), "\"\n");
  grpc::Status status = Load(huge, "huge.textproto");

  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr(absl::StrCat("huge.textproto: ", huge.size(),
                                     " bytes, over the limit of 1048576 "
                                     "bytes (--max_scenario_bytes)")));
  ExpectServing();
  ExpectScriptedRuleStillLoaded();
}

TEST_F(LimitsTest, FlagsSetTheLimits) {
  Start({"--max_scenario_depth=20", "--max_scenario_bytes=4096"});
  ASSERT_THAT(Load(kScriptedGetJob), ::workflows::testing::IsOk());
  // 5 + 3 * 5 = 20 levels fit; one more level does not.
  EXPECT_THAT(Load(DeepScenario(5)), ::workflows::testing::IsOk());
  ASSERT_THAT(Load(kScriptedGetJob), ::workflows::testing::IsOk());
  EXPECT_THAT(Load(DeepScenario(6)).error_message(),
              HasSubstr("nesting limit of 20 levels exceeded"));
  EXPECT_THAT(
      Load(absl::StrCat("description: \"", std::string(5000, 'x'), "\""))
          .error_message(),
      HasSubstr("over the limit of 4096 bytes (--max_scenario_bytes)"));
  ExpectScriptedRuleStillLoaded();
}

TEST(LimitsFlagsTest, ScenarioFileOverTheLimitsExitsTwoNamingIt) {
  const std::string deep = TempPath("deep.textproto");
  {
    std::ofstream out(deep, std::ios::binary | std::ios::trunc);
    out << DeepScenario(10000);
  }
  absl::StatusOr<ProcessResult> result =
      ServerProcess::Run({"--scenario=" + deep});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->stderr_text,
              AllOf(HasSubstr(deep + ":7:"),
                    HasSubstr("nesting limit of 100 levels exceeded")));

  result =
      ServerProcess::Run({"--scenario=" + deep, "--max_scenario_bytes=1000"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->stderr_text,
              HasSubstr("over the limit of 1000 bytes (--max_scenario_bytes)"));

  result = ServerProcess::Run({"--max_scenario_depth=0"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->stderr_text,
              HasSubstr("--max_scenario_depth must be positive"));
}

TEST_F(LimitsTest, AdvanceClockBeyondDurationRangeIsRefusedAndGetJobIsPrompt) {
  Start({"--simulated_clock"});
  ASSERT_THAT(Load("job_progression { stage_duration { seconds: 10 } }"),
              ::workflows::testing::IsOk());
  wf::Job created;
  {
    grpc::ClientContext context;
    SetDeadline(&context);
    wf::CreateJobRequest request;
    request.set_serialized_graft(R"({"returns": 1})");
    grpc::Status status = jobs_->CreateJob(&context, request, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  grpc::Status status = Advance(std::numeric_limits<int64_t>::max());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("AdvanceClockRequest.duration: seconds "
                        "9223372036854775807 out of range 0..315576000000"));
  EXPECT_EQ(Advance(1, 1000000000).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Advance(-1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  // In Duration's range (10,000 years) but past the year 9999 that a
  // Timestamp can hold: refused, the clock stays.
  status = Advance(315576000000);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_THAT(status.error_message(), HasSubstr("9999-12-31"));

  // The job still progresses normally, then a jump of 7,000 years is fine.
  wf::Job job;
  status = GetJob(created.id(), &job);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(job.state().stage(), wf::Job::QUEUED);
  fake::AdvanceClockResponse advanced;
  ASSERT_THAT(Advance(int64_t{7000} * 365 * 86400, 0, &advanced),
              ::workflows::testing::IsOk());
  EXPECT_GT(advanced.now().seconds(), int64_t{7000} * 365 * 86400);
  const absl::Time start = absl::Now();
  status = GetJob(created.id(), &job);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(job.state().stage(), wf::Job::SUCCEEDED);
  // Bounded work, not a race against a timer: a looping server would not
  // answer within the call's deadline at all.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ExpectServing();
}

TEST_F(LimitsTest, DurationsOutOfRangeInScenariosAndWaitForCallsAreRefused) {
  Start({});
  grpc::Status status = Load(R"pb(
    rules {
      method: "GetJob"
      behavior { delay { seconds: 9223372036854775807 } }
    }
  )pb");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("behavior.delay: seconds 9223372036854775807 out of "
                        "range 0..315576000000"));
  status = Load("job_progression { stage_duration { seconds: 315576000001 } }");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("job_progression.stage_duration: seconds "
                        "315576000001 out of range"));

  grpc::ClientContext context;
  SetDeadline(&context);
  fake::WaitForCallsRequest request;
  request.set_method("GetJob");
  request.set_count(1);
  request.mutable_timeout()->set_seconds(std::numeric_limits<int64_t>::max());
  fake::WaitForCallsResponse response;
  status = control_->WaitForCalls(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("WaitForCallsRequest.timeout: seconds "));
  ExpectServing();
}

}  // namespace
}  // namespace testing
}  // namespace workflows
