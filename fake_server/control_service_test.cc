#include "fake_server/control_service.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/control.grpc.pb.h"
#include "fake_server/fake_workflows_server.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/job.grpc.pb.h"

namespace workflows {
namespace fake {
namespace {

using ::descarteslabs::workflows::CreateJobRequest;
using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;
using ::descarteslabs::workflows::JobAPI;
using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

constexpr char kFlakyGetJob[] = R"pb(
  name: "flaky"
  rules {
    method: "GetJob"
    fail_times: 1
    behavior_on_fail { fail { code: "UNAVAILABLE" message: "scripted" } }
  }
)pb";

// A fake server plus a control service on its own loopback TCP server, so
// that the control calls come from a real loopback peer.
class ControlServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartWith({}); }

  void StartWith(ControlServiceOptions control_options) {
    FakeServerOptions options;
    options.transport = Transport::kInProcess;
    if (control_options.clock != nullptr) options.clock = control_options.clock;
    fake_ = FakeWorkflowsServer::Start(options).value();
    control_ = std::make_unique<ControlService>(control_options);
    control_->Attach(fake_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(control_.get());
    control_server_ = builder.BuildAndStart();
    ASSERT_NE(control_server_, nullptr);
    stub_ = FakeControl::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    jobs_ = JobAPI::NewStub(fake_->InProcessChannel());
  }

  void TearDown() override {
    control_server_->Shutdown();
    fake_->Shutdown();
    control_->Detach();
  }

  grpc::Status Load(const std::string& text, bool merge = false,
                    LoadScenarioResponse* response = nullptr) {
    grpc::ClientContext context;
    LoadScenarioRequest request;
    request.set_scenario_text(text);
    request.set_source_name("test.textproto");
    request.set_merge(merge);
    LoadScenarioResponse ignored;
    return stub_->LoadScenario(&context, request,
                               response != nullptr ? response : &ignored);
  }

  grpc::Status GetJob(const std::string& id, Job* job = nullptr) {
    grpc::ClientContext context;
    GetJobRequest request;
    request.set_id(id);
    Job ignored;
    return jobs_->GetJob(&context, request, job != nullptr ? job : &ignored);
  }

  std::unique_ptr<FakeWorkflowsServer> fake_;
  std::unique_ptr<ControlService> control_;
  std::unique_ptr<grpc::Server> control_server_;
  std::unique_ptr<FakeControl::Stub> stub_;
  std::unique_ptr<JobAPI::Stub> jobs_;
};

TEST(IsLocalPeerTest, AcceptsLoopbackUnixAndInProcessOnly) {
  EXPECT_TRUE(ControlService::IsLocalPeer("ipv4:127.0.0.1:4000"));
  EXPECT_TRUE(ControlService::IsLocalPeer("ipv4:127.1.2.3:4000"));
  EXPECT_TRUE(ControlService::IsLocalPeer("ipv6:[::1]:4000"));
  EXPECT_TRUE(ControlService::IsLocalPeer("ipv6:%5B::1%5D:4000"));
  EXPECT_TRUE(ControlService::IsLocalPeer("ipv6:[::ffff:127.0.0.1]:4000"));
  EXPECT_TRUE(ControlService::IsLocalPeer("unix:/tmp/socket"));
  EXPECT_TRUE(ControlService::IsLocalPeer("inproc"));
  EXPECT_TRUE(ControlService::IsLocalPeer("unknown"));
  EXPECT_FALSE(ControlService::IsLocalPeer("ipv4:10.0.0.7:4000"));
  EXPECT_FALSE(ControlService::IsLocalPeer("ipv4:128.0.0.1:4000"));
  EXPECT_FALSE(ControlService::IsLocalPeer("ipv6:[2001:db8::1]:4000"));
  EXPECT_FALSE(ControlService::IsLocalPeer("ipv6:[::ffff:10.0.0.1]:4000"));
  EXPECT_FALSE(ControlService::IsLocalPeer(""));
}

// The refusal itself: a CI runner on another host must not rescript the
// fake unless the operator asked for it.
TEST(AdmitControlPeerTest, RefusesNonLoopbackPeersNamingTheFlag) {
  for (const char* peer : {"ipv4:10.1.2.3:5", "ipv6:[2001:db8::1]:5",
                           "ipv6:%5B2001:db8::1%5D:5", "ipv4:192.168.0.1:80"}) {
    SCOPED_TRACE(peer);
    const grpc::Status status = AdmitControlPeer(peer, /*allow_remote=*/false);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(status.error_message(), HasSubstr(peer));
    EXPECT_THAT(status.error_message(), HasSubstr("--allow_remote_control"));
  }
}

TEST(AdmitControlPeerTest, AdmitsLoopbackUnixAndInProcessPeers) {
  for (const char* peer :
       {"ipv4:127.0.0.1:5", "ipv6:[::1]:5", "ipv6:%5B::1%5D:5",
        "ipv6:[::ffff:127.0.0.1]:5", "unix:/tmp/fake.sock",
        "unix-abstract:fake", "inproc", "unknown"}) {
    SCOPED_TRACE(peer);
    const grpc::Status status = AdmitControlPeer(peer, /*allow_remote=*/false);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
}

TEST(AdmitControlPeerTest, AllowRemoteAdmitsEveryPeer) {
  for (const char* peer : {"ipv4:10.1.2.3:5", "ipv6:[2001:db8::1]:5",
                           "ipv4:127.0.0.1:5", "unknown", ""}) {
    SCOPED_TRACE(peer);
    EXPECT_TRUE(AdmitControlPeer(peer, /*allow_remote=*/true).ok());
  }
}

TEST_F(ControlServiceTest, InProcessPeersAreLocal) {
  auto in_process = FakeControl::NewStub(control_server_->InProcessChannel({}));
  grpc::ClientContext context;
  ClearJournalResponse response;
  grpc::Status status =
      in_process->ClearJournal(&context, ClearJournalRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_code() << ": "
                           << status.error_message();
}

TEST_F(ControlServiceTest, LoadScenarioScriptsTheServer) {
  LoadScenarioResponse response;
  ASSERT_TRUE(Load(kFlakyGetJob, /*merge=*/false, &response).ok());
  EXPECT_EQ(response.rules_loaded(), 1u);
  grpc::Status first = GetJob("missing");
  EXPECT_EQ(first.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(first.error_message(), "scripted");
  // Then the in-memory backend answers.
  EXPECT_EQ(GetJob("missing").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ControlServiceTest, BadScenarioIsRejectedWithPositionAndChangesNothing) {
  ASSERT_TRUE(Load(kFlakyGetJob).ok());
  grpc::Status bad = Load("rules {\n  methd: \"GetJob\"\n}\n");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("test.textproto:2:"));
  EXPECT_THAT(bad.error_message(), HasSubstr("methd"));
  // The earlier scenario still stands.
  EXPECT_EQ(GetJob("x").error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ControlServiceTest, UnknownMethodListsValidNames) {
  grpc::Status bad = Load(R"pb(rules {
                                 method: "GetJbo"
                                 behavior { hang: true }
                               })pb");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("GetJbo"));
  EXPECT_THAT(bad.error_message(), HasSubstr("GetJob"));
  EXPECT_THAT(bad.error_message(), HasSubstr("WatchJob"));
}

TEST_F(ControlServiceTest, MergeAddsRulesOnTopAndRefusesSeed) {
  ASSERT_TRUE(Load(kFlakyGetJob).ok());
  ASSERT_TRUE(Load(R"pb(rules {
                          method: "CreateJob"
                          behavior { fail { code: "RESOURCE_EXHAUSTED" } }
                        })pb",
                   /*merge=*/true)
                  .ok());
  EXPECT_EQ(GetJob("x").error_code(), grpc::StatusCode::UNAVAILABLE);
  grpc::ClientContext context;
  CreateJobRequest create;
  create.set_serialized_graft(R"({"returns": 1})");
  Job job;
  EXPECT_EQ(jobs_->CreateJob(&context, create, &job).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  grpc::Status seeded =
      Load(R"pb(seed { jobs { id: "j" } })pb", /*merge=*/true);
  EXPECT_EQ(seeded.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(seeded.error_message(), HasSubstr("merge"));
}

TEST_F(ControlServiceTest, SetHealthIsSeenByHealthCheck) {
  auto health = Health::NewStub(fake_->InProcessChannel());
  grpc::ClientContext set_context;
  SetHealthRequest set;
  set.set_status("NOT_SERVING");
  SetHealthResponse set_response;
  ASSERT_TRUE(stub_->SetHealth(&set_context, set, &set_response).ok());
  grpc::ClientContext check_context;
  HealthCheckResponse check;
  ASSERT_TRUE(health->Check(&check_context, HealthCheckRequest(), &check).ok());
  EXPECT_EQ(check.status(), HealthCheckResponse::NOT_SERVING);

  grpc::ClientContext bad_context;
  set.set_status("SICK");
  grpc::Status bad = stub_->SetHealth(&bad_context, set, &set_response);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), HasSubstr("SICK"));
}

TEST_F(ControlServiceTest, JournalCanBeReadFilteredAndCleared) {
  GetJob("a").ok();
  GetJob("b").ok();
  {
    grpc::ClientContext context;
    GetJournalRequest request;
    request.set_method("GetJob");
    GetJournalResponse response;
    ASSERT_TRUE(stub_->GetJournal(&context, request, &response).ok());
    ASSERT_EQ(response.journal().calls_size(), 2);
    EXPECT_EQ(response.journal().calls(0).method(),
              "/descarteslabs.workflows.JobAPI/GetJob");
    EXPECT_EQ(response.journal().calls(1).status_code(), "NOT_FOUND");
  }
  {
    grpc::ClientContext context;
    GetJournalRequest request;
    request.set_method("CreateJob");
    GetJournalResponse response;
    ASSERT_TRUE(stub_->GetJournal(&context, request, &response).ok());
    EXPECT_EQ(response.journal().calls_size(), 0);
  }
  {
    grpc::ClientContext context;
    ClearJournalResponse response;
    ASSERT_TRUE(
        stub_->ClearJournal(&context, ClearJournalRequest(), &response).ok());
  }
  grpc::ClientContext context;
  GetJournalResponse response;
  ASSERT_TRUE(stub_->GetJournal(&context, GetJournalRequest(), &response).ok());
  EXPECT_EQ(response.journal().calls_size(), 0);
}

TEST_F(ControlServiceTest, WaitForCallsReturnsOnceSeenAndTimesOutClearly) {
  GetJob("a").ok();
  WaitForCallsRequest request;
  request.set_method("GetJob");
  request.set_count(1);
  request.mutable_timeout()->set_seconds(5);
  WaitForCallsResponse response;
  {
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->WaitForCalls(&context, request, &response).ok());
  }
  request.set_count(2);
  request.mutable_timeout()->set_seconds(0);
  request.mutable_timeout()->set_nanos(50000000);
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  grpc::Status timed_out = stub_->WaitForCalls(&context, request, &response);
  EXPECT_EQ(timed_out.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(timed_out.error_message(), HasSubstr("GetJob"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  grpc::ClientContext unknown_context;
  request.set_method("GetJbo");
  EXPECT_EQ(
      stub_->WaitForCalls(&unknown_context, request, &response).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControlServiceTest, WaitForCallsInFlightSeesAHangingCall) {
  ASSERT_TRUE(Load(R"pb(rules {
                          method: "GetJob"
                          behavior { hang: true }
                        })pb")
                  .ok());
  grpc::ClientContext hung_context;
  GetJobRequest hung_request;
  hung_request.set_id("x");
  Job hung_job;
  grpc::Status hung_status;
  absl::Notification hung_done;
  jobs_->async()->GetJob(&hung_context, &hung_request, &hung_job,
                         [&](grpc::Status status) {
                           hung_status = status;
                           hung_done.Notify();
                         });
  WaitForCallsRequest request;
  request.set_method("GetJob");
  request.set_count(1);
  request.set_in_flight(true);
  request.mutable_timeout()->set_seconds(10);
  WaitForCallsResponse response;
  grpc::ClientContext context;
  grpc::Status arrived = stub_->WaitForCalls(&context, request, &response);
  EXPECT_TRUE(arrived.ok()) << arrived.error_message();
  hung_context.TryCancel();
  hung_done.WaitForNotification();
  EXPECT_EQ(hung_status.error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ControlServiceTest, AdvanceClockNeedsASimulatedClock) {
  grpc::ClientContext context;
  AdvanceClockRequest request;
  request.mutable_duration()->set_seconds(1);
  AdvanceClockResponse response;
  grpc::Status status = stub_->AdvanceClock(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("--simulated_clock"));
}

TEST_F(ControlServiceTest, AdvanceClockMovesJobsAlong) {
  TearDown();
  auto clock = std::make_shared<SimulatedClock>();
  StartWith({.allow_remote = false, .clock = clock});
  ASSERT_TRUE(
      Load(R"pb(job_progression { stage_duration { seconds: 10 } })pb").ok());
  grpc::ClientContext create_context;
  CreateJobRequest create;
  create.set_serialized_graft(R"({"returns": 1})");
  Job created;
  ASSERT_TRUE(jobs_->CreateJob(&create_context, create, &created).ok());
  Job before;
  ASSERT_TRUE(GetJob(created.id(), &before).ok());
  EXPECT_NE(before.state().stage(), Job::SUCCEEDED);

  grpc::ClientContext context;
  AdvanceClockRequest request;
  request.mutable_duration()->set_seconds(60);
  AdvanceClockResponse response;
  ASSERT_TRUE(stub_->AdvanceClock(&context, request, &response).ok());
  EXPECT_EQ(response.now().seconds(), absl::ToUnixSeconds(clock->Now()));
  Job after;
  ASSERT_TRUE(GetJob(created.id(), &after).ok());
  EXPECT_EQ(after.state().stage(), Job::SUCCEEDED);

  grpc::ClientContext negative_context;
  request.mutable_duration()->set_seconds(-1);
  EXPECT_EQ(
      stub_->AdvanceClock(&negative_context, request, &response).error_code(),
      grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControlServiceTest, ResetDropsRulesAndJournal) {
  ASSERT_TRUE(Load(kFlakyGetJob).ok());
  grpc::ClientContext context;
  ResetResponse response;
  ASSERT_TRUE(stub_->Reset(&context, ResetRequest(), &response).ok());
  EXPECT_EQ(GetJob("x").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(fake_->journal().Calls().size(), 1u);
}

TEST_F(ControlServiceTest, DetachedServiceIsUnavailable) {
  control_->Detach();
  grpc::ClientContext context;
  ResetResponse response;
  EXPECT_EQ(stub_->Reset(&context, ResetRequest(), &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  control_->Attach(fake_.get());
}

}  // namespace
}  // namespace fake
}  // namespace workflows
