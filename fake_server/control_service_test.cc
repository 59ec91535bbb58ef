#include "fake_server/control_service.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/control.grpc.pb.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/session.h"
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
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

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

  // Session helpers: each is the control RPC a parallel CI job would make,
  // scoped to `session` ("" = the whole server).
  grpc::Status LoadIn(const std::string& session, const std::string& text,
                      bool merge = false) {
    grpc::ClientContext context;
    LoadScenarioRequest request;
    request.set_scenario_text(text);
    request.set_source_name("session.textproto");
    request.set_merge(merge);
    request.set_session(session);
    LoadScenarioResponse response;
    return stub_->LoadScenario(&context, request, &response);
  }

  // GetJob tagged with `session` (untagged when "").
  grpc::Status GetJobIn(const std::string& session, const std::string& id) {
    grpc::ClientContext context;
    if (!session.empty()) {
      context.AddMetadata(std::string(kSessionMetadataKey), session);
    }
    GetJobRequest request;
    request.set_id(id);
    Job job;
    return jobs_->GetJob(&context, request, &job);
  }

  grpc::Status CreateJobIn(const std::string& session) {
    grpc::ClientContext context;
    if (!session.empty()) {
      context.AddMetadata(std::string(kSessionMetadataKey), session);
    }
    CreateJobRequest request;
    request.set_serialized_graft(R"({"returns": 1})");
    Job job;
    return jobs_->CreateJob(&context, request, &job);
  }

  // The journal's calls of `session`, as "<session>:<status code>".
  std::vector<std::string> JournalOf(const std::string& session) {
    grpc::ClientContext context;
    GetJournalRequest request;
    request.set_session(session);
    GetJournalResponse response;
    grpc::Status status = stub_->GetJournal(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<std::string> calls;
    for (const RecordedCall& call : response.journal().calls()) {
      calls.push_back(absl::StrCat(call.session(), ":", call.status_code()));
    }
    return calls;
  }

  grpc::Status WaitIn(const std::string& session, const std::string& method,
                      uint32_t count, absl::Duration timeout,
                      bool in_flight = false) {
    grpc::ClientContext context;
    WaitForCallsRequest request;
    request.set_session(session);
    request.set_method(method);
    request.set_count(count);
    request.set_in_flight(in_flight);
    const int64_t nanos = absl::ToInt64Nanoseconds(timeout);
    request.mutable_timeout()->set_seconds(nanos / 1000000000);
    request.mutable_timeout()->set_nanos(
        static_cast<int32_t>(nanos % 1000000000));
    WaitForCallsResponse response;
    return stub_->WaitForCalls(&context, request, &response);
  }

  grpc::Status ClearIn(const std::string& session) {
    grpc::ClientContext context;
    ClearJournalRequest request;
    request.set_session(session);
    ClearJournalResponse response;
    return stub_->ClearJournal(&context, request, &response);
  }

  grpc::Status ResetIn(const std::string& session) {
    grpc::ClientContext context;
    ResetRequest request;
    request.set_session(session);
    ResetResponse response;
    return stub_->Reset(&context, request, &response);
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

// A journal larger than one response: every page is under gRPC's default
// 4 MiB limit, says that more remains, and the pages hold every call once.
TEST_F(ControlServiceTest, GetJournalPagesUnder4MiBAndSaysWhenMoreRemains) {
  const std::string long_id(2000, 'j');
  constexpr int kCalls = 3000;  // about 6 MB of journal
  for (int i = 0; i < kCalls; ++i) ASSERT_FALSE(GetJob(long_id).ok());
  GetJournalRequest request;
  request.set_method("GetJob");
  std::vector<uint64_t> sequences;
  int pages = 0;
  for (;;) {
    grpc::ClientContext context;
    GetJournalResponse response;
    ASSERT_TRUE(stub_->GetJournal(&context, request, &response).ok());
    ++pages;
    EXPECT_LT(response.ByteSizeLong(), 4 << 20);
    for (const RecordedCall& call : response.journal().calls()) {
      sequences.push_back(call.sequence());
    }
    if (pages == 1) {
      // A reader that ignores paging can tell it got a part only.
      EXPECT_GT(response.journal().more_calls(), 0);
      EXPECT_LT(response.journal().calls_size(), kCalls);
    }
    if (response.journal().more_calls() == 0) {
      EXPECT_EQ(response.next_page_token(), "");
      break;
    }
    ASSERT_NE(response.next_page_token(), "");
    request.set_page_token(response.next_page_token());
    ASSERT_LT(pages, 50);
  }
  EXPECT_GE(pages, 2);
  ASSERT_EQ(sequences.size(), kCalls);
  for (int i = 0; i < kCalls; ++i) ASSERT_EQ(sequences[i], i + 1);

  grpc::ClientContext context;
  GetJournalRequest small;
  small.set_page_size(10);
  GetJournalResponse response;
  ASSERT_TRUE(stub_->GetJournal(&context, small, &response).ok());
  EXPECT_EQ(response.journal().calls_size(), 10);
  EXPECT_EQ(response.journal().more_calls(), kCalls - 10);

  grpc::ClientContext bad_context;
  GetJournalRequest bad;
  bad.set_page_token("not-a-token");
  EXPECT_EQ(stub_->GetJournal(&bad_context, bad, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
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

// Helpers for AdvanceJob: create a job, advance it, read its stage.
class AdvanceJobTest : public ControlServiceTest {
 protected:
  void SetUp() override { StartWith({.allow_remote = false, .clock = clock_}); }

  std::string CreateJob() {
    grpc::ClientContext context;
    CreateJobRequest create;
    create.set_serialized_graft(R"({"returns": 1})");
    Job created;
    grpc::Status status = jobs_->CreateJob(&context, create, &created);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return created.id();
  }

  grpc::Status Advance(AdvanceJobRequest request,
                       AdvanceJobResponse* response = nullptr) {
    grpc::ClientContext context;
    AdvanceJobResponse ignored;
    return stub_->AdvanceJob(&context, request,
                             response != nullptr ? response : &ignored);
  }

  Job::Stage StageOf(const std::string& id) {
    Job job;
    grpc::Status status = GetJob(id, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job.state().stage();
  }

  std::shared_ptr<SimulatedClock> clock_ = std::make_shared<SimulatedClock>();
};

TEST_F(AdvanceJobTest, MovesOneJobOnlyAndLeavesTheClock) {
  ASSERT_TRUE(
      Load(R"pb(job_progression { stage_duration { seconds: 10 } })pb").ok());
  const std::string moved = CreateJob();
  const std::string other = CreateJob();
  const absl::Time start = clock_->Now();

  AdvanceJobRequest next;  // No `how`: to the next stage.
  next.set_job_id(moved);
  AdvanceJobResponse response;
  ASSERT_TRUE(Advance(next, &response).ok());
  EXPECT_EQ(response.state().stage(), Job::PREPARING);
  EXPECT_EQ(response.state().timestamp(), absl::ToUnixMillis(start));
  next.set_to_next_stage(true);
  ASSERT_TRUE(Advance(next, &response).ok());
  EXPECT_EQ(response.state().stage(), Job::RUNNING);
  EXPECT_EQ(StageOf(moved), Job::RUNNING);
  EXPECT_EQ(StageOf(other), Job::QUEUED);
  EXPECT_EQ(clock_->Now(), start);

  AdvanceJobRequest to_end;
  to_end.set_job_id(moved);
  to_end.set_to_end(true);
  ASSERT_TRUE(Advance(to_end, &response).ok());
  EXPECT_EQ(response.state().stage(), Job::SUCCEEDED);
  EXPECT_EQ(StageOf(other), Job::QUEUED);

  grpc::Status done = Advance(to_end);
  EXPECT_EQ(done.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(
      done.error_message(),
      HasSubstr(absl::StrCat("job \"", moved, "\" is already SUCCEEDED")));
}

TEST_F(AdvanceJobTest, DurationRunsTheJobsOwnClockAhead) {
  ASSERT_TRUE(
      Load(R"pb(job_progression { stage_duration { seconds: 10 } })pb").ok());
  const std::string id = CreateJob();
  AdvanceJobRequest request;
  request.set_job_id(id);
  request.mutable_duration()->set_seconds(25);  // 5 s into RUNNING.
  AdvanceJobResponse response;
  ASSERT_TRUE(Advance(request, &response).ok());
  EXPECT_EQ(response.state().stage(), Job::RUNNING);
  // The simulated clock finishes the stage: 5 s of RUNNING are left.
  clock_->AdvanceBy(absl::Seconds(4));
  EXPECT_EQ(StageOf(id), Job::RUNNING);
  clock_->AdvanceBy(absl::Seconds(1));
  EXPECT_EQ(StageOf(id), Job::SAVING);

  request.mutable_duration()->set_seconds(0);
  ASSERT_TRUE(Advance(request, &response).ok());
  EXPECT_EQ(response.state().stage(), Job::SAVING);
  request.mutable_duration()->set_seconds(-1);
  grpc::Status negative = Advance(request);
  EXPECT_EQ(negative.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(negative.error_message(),
              HasSubstr("AdvanceJobRequest.duration"));
}

TEST_F(AdvanceJobTest, UnknownJobIsNotFoundNamingIt) {
  AdvanceJobRequest request;
  request.set_job_id("job-nope");
  grpc::Status status = Advance(request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("job \"job-nope\" not found"));
  request.set_to_end(true);
  EXPECT_EQ(Advance(request).error_code(), grpc::StatusCode::NOT_FOUND);
  request.mutable_duration()->set_seconds(1);
  EXPECT_EQ(Advance(request).error_code(), grpc::StatusCode::NOT_FOUND);
  request.set_job_id("");
  grpc::Status empty = Advance(request);
  EXPECT_EQ(empty.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(empty.error_message(), HasSubstr("job_id is required"));
}

// A CANCELLED plan, driven to its end by AdvanceJob while a client watches:
// the watcher sees every stage, in order, then the stream ends OK.
TEST_F(AdvanceJobTest, CancelledPlanEndsCancelledAndWatchersSeeEachStage) {
  ASSERT_TRUE(Load(R"pb(job_progression {
                          stage_duration { seconds: 10 }
                          final_stage: CANCELLED
                          fail_at_stage: RUNNING
                        })pb")
                  .ok());
  const std::string id = CreateJob();
  grpc::ClientContext watch_context;
  descarteslabs::workflows::WatchJobRequest watch;
  watch.set_id(id);
  std::unique_ptr<grpc::ClientReader<Job::State>> states =
      jobs_->WatchJob(&watch_context, watch);
  Job::State state;
  ASSERT_TRUE(states->Read(&state));
  EXPECT_EQ(state.stage(), Job::QUEUED);

  AdvanceJobRequest request;
  request.set_job_id(id);
  request.set_to_end(true);
  AdvanceJobResponse response;
  ASSERT_TRUE(Advance(request, &response).ok());
  EXPECT_EQ(response.state().stage(), Job::CANCELLED);
  EXPECT_FALSE(response.state().has_error());

  std::vector<Job::Stage> seen;
  while (states->Read(&state)) seen.push_back(state.stage());
  EXPECT_TRUE(states->Finish().ok());
  EXPECT_THAT(seen, ElementsAre(Job::PREPARING, Job::RUNNING, Job::CANCELLED));
}

// The same plan on the simulated clock alone: CANCELLED when RUNNING ends.
TEST_F(AdvanceJobTest, CancelledPlanFollowsTheSimulatedClock) {
  ASSERT_TRUE(Load(R"pb(job_progression {
                          stage_duration { seconds: 10 }
                          final_stage: CANCELLED
                        })pb")
                  .ok());
  const std::string id = CreateJob();
  clock_->AdvanceBy(absl::Seconds(29));
  EXPECT_EQ(StageOf(id), Job::RUNNING);
  clock_->AdvanceBy(absl::Seconds(1));
  EXPECT_EQ(StageOf(id), Job::CANCELLED);
  clock_->AdvanceBy(absl::Hours(1));
  EXPECT_EQ(StageOf(id), Job::CANCELLED);
}

TEST(AdvanceJobCustomBackendTest, NeedsTheInMemoryBackend) {
  FakeServerOptions options;
  options.transport = Transport::kInProcess;
  // Any backend passed in is custom, even an InMemoryBackend.
  options.backend = std::make_shared<InMemoryBackend>();
  auto fake = FakeWorkflowsServer::Start(options).value();
  ControlService control({});
  control.Attach(fake.get());
  grpc::ServerBuilder builder;
  builder.RegisterService(&control);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  auto stub = FakeControl::NewStub(server->InProcessChannel({}));
  grpc::ClientContext context;
  AdvanceJobRequest request;
  request.set_job_id("job-000001");
  AdvanceJobResponse response;
  grpc::Status status = stub->AdvanceJob(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("custom"));
  server->Shutdown();
  fake->Shutdown();
  control.Detach();
}

TEST_F(ControlServiceTest, ResetDropsRulesAndJournal) {
  ASSERT_TRUE(Load(kFlakyGetJob).ok());
  grpc::ClientContext context;
  ResetResponse response;
  ASSERT_TRUE(stub_->Reset(&context, ResetRequest(), &response).ok());
  EXPECT_EQ(GetJob("x").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(fake_->journal().Calls().size(), 1u);
}

// --- Sessions: one fake, many parallel tests (x-fake-session). ---

// Session "a" scripts an outage of GetJob, session "b" a NOT_FOUND reply;
// the global rules fail GetJob with ABORTED and CreateJob with
// RESOURCE_EXHAUSTED.
constexpr char kGlobalRules[] = R"pb(
  rules {
    name: "global-get"
    method: "GetJob"
    behavior { fail { code: "ABORTED" message: "global" } }
  }
  rules {
    name: "global-create"
    method: "CreateJob"
    behavior { fail { code: "RESOURCE_EXHAUSTED" message: "global" } }
  }
)pb";
constexpr char kSessionAOutage[] = R"pb(
  rules {
    name: "a-outage"
    method: "GetJob"
    behavior { fail { code: "UNAVAILABLE" message: "a: outage" } }
  }
)pb";
constexpr char kSessionBMissing[] = R"pb(
  rules {
    name: "b-missing"
    method: "GetJob"
    behavior { fail { code: "NOT_FOUND" message: "b: no such job" } }
  }
)pb";

TEST_F(ControlServiceTest, SessionRulesDecideOnlyTheirSessionsCallsFirst) {
  ASSERT_TRUE(Load(kGlobalRules).ok());
  ASSERT_TRUE(LoadIn("a", kSessionAOutage).ok());
  ASSERT_TRUE(LoadIn("b", kSessionBMissing).ok());

  const grpc::Status a = GetJobIn("a", "j");
  EXPECT_EQ(a.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(a.error_message(), "a: outage");
  const grpc::Status b = GetJobIn("b", "j");
  EXPECT_EQ(b.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(b.error_message(), "b: no such job");
  // Untagged calls and sessions without rules see only the global rules.
  EXPECT_EQ(GetJobIn("", "j").error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(GetJobIn("c", "j").error_code(), grpc::StatusCode::ABORTED);
  // A tagged call no session rule matches falls through to the global rules.
  EXPECT_EQ(CreateJobIn("a").error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  // The journal records each call's session and deciding rule.
  std::vector<std::string> rules;
  for (const RecordedCall& call : fake_->journal().Calls()) {
    rules.push_back(absl::StrCat(call.session(), "=", call.rule()));
  }
  EXPECT_THAT(rules, ElementsAre("a=a-outage", "b=b-missing", "=global-get",
                                 "c=global-get", "a=global-create"));
}

TEST_F(ControlServiceTest, SessionLoadReplacesOrMergesOnlyThatSession) {
  ASSERT_TRUE(LoadIn("a", kSessionAOutage).ok());
  ASSERT_TRUE(LoadIn("b", kSessionBMissing).ok());
  // merge: CreateJob fails too, GetJob still has the outage.
  ASSERT_TRUE(LoadIn("a", R"pb(rules {
                                 method: "CreateJob"
                                 behavior { fail { code: "INTERNAL" } }
                               })pb",
                     /*merge=*/true)
                  .ok());
  EXPECT_EQ(GetJobIn("a", "j").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(CreateJobIn("a").error_code(), grpc::StatusCode::INTERNAL);
  // Replace: only the new rule is left in "a"; "b" is untouched.
  ASSERT_TRUE(LoadIn("a", R"pb(rules {
                                 method: "GetJob"
                                 behavior { fail { code: "DATA_LOSS" } }
                               })pb")
                  .ok());
  EXPECT_EQ(GetJobIn("a", "j").error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_TRUE(CreateJobIn("a").ok());
  EXPECT_EQ(GetJobIn("b", "j").error_message(), "b: no such job");
  // A global (session-less) load leaves the sessions' rules in place.
  ASSERT_TRUE(Load(kGlobalRules).ok());
  EXPECT_EQ(GetJobIn("a", "j").error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(GetJobIn("", "j").error_code(), grpc::StatusCode::ABORTED);
}

TEST_F(ControlServiceTest, SessionJournalQueriesSeeAndClearOnlyThatSession) {
  GetJobIn("a", "j1").ok();
  GetJobIn("b", "j2").ok();
  GetJobIn("a", "j3").ok();
  GetJobIn("", "j4").ok();

  EXPECT_THAT(JournalOf("a"), ElementsAre("a:NOT_FOUND", "a:NOT_FOUND"));
  EXPECT_THAT(JournalOf("b"), ElementsAre("b:NOT_FOUND"));
  EXPECT_THAT(JournalOf(""), ElementsAre("a:NOT_FOUND", "b:NOT_FOUND",
                                         "a:NOT_FOUND", ":NOT_FOUND"));

  EXPECT_TRUE(WaitIn("a", "GetJob", 2, absl::Seconds(10)).ok());
  const grpc::Status b_short = WaitIn("b", "GetJob", 2, absl::Milliseconds(50));
  EXPECT_EQ(b_short.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(b_short.error_message(), HasSubstr("in session \"b\""));
  EXPECT_THAT(b_short.error_message(), HasSubstr("saw 1"));
  // Without a session, every session's calls count.
  EXPECT_TRUE(WaitIn("", "GetJob", 4, absl::Seconds(10)).ok());

  ASSERT_TRUE(ClearIn("a").ok());
  EXPECT_THAT(JournalOf("a"), ElementsAre());
  EXPECT_THAT(JournalOf(""), ElementsAre("b:NOT_FOUND", ":NOT_FOUND"));
  EXPECT_EQ(WaitIn("a", "GetJob", 1, absl::Milliseconds(50)).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(WaitIn("b", "GetJob", 1, absl::Seconds(10)).ok());
  EXPECT_TRUE(WaitIn("", "GetJob", 2, absl::Seconds(10)).ok());

  ASSERT_TRUE(ClearIn("").ok());
  EXPECT_THAT(JournalOf(""), ElementsAre());
}

TEST_F(ControlServiceTest, WaitForCallsInFlightCountsOnlyThatSession) {
  ASSERT_TRUE(LoadIn("a", R"pb(rules {
                                 method: "GetJob"
                                 behavior { hang: true }
                               })pb")
                  .ok());
  grpc::ClientContext hung_context;
  hung_context.AddMetadata(std::string(kSessionMetadataKey), "a");
  GetJobRequest hung_request;
  hung_request.set_id("x");
  Job hung_job;
  absl::Notification hung_done;
  jobs_->async()->GetJob(&hung_context, &hung_request, &hung_job,
                         [&](grpc::Status) { hung_done.Notify(); });
  EXPECT_TRUE(WaitIn("a", "GetJob", 1, absl::Seconds(10), true).ok());
  EXPECT_EQ(WaitIn("b", "GetJob", 1, absl::Milliseconds(50), true).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  // Only session "a" hangs; "b" is answered by the backend.
  EXPECT_EQ(GetJobIn("b", "x").error_code(), grpc::StatusCode::NOT_FOUND);
  hung_context.TryCancel();
  hung_done.WaitForNotification();
}

TEST_F(ControlServiceTest, ResetWithASessionKeepsOtherSessionsAndGlobalRules) {
  ASSERT_TRUE(Load(kGlobalRules).ok());
  ASSERT_TRUE(LoadIn("a", kSessionAOutage).ok());
  ASSERT_TRUE(LoadIn("b", kSessionBMissing).ok());
  GetJobIn("a", "j").ok();
  GetJobIn("b", "j").ok();
  GetJobIn("", "j").ok();

  ASSERT_TRUE(ResetIn("a").ok());
  EXPECT_THAT(JournalOf("a"), ElementsAre());
  EXPECT_THAT(JournalOf(""), ElementsAre("b:NOT_FOUND", ":ABORTED"));
  // "a" falls back to the global rules; "b" and untagged calls are as before.
  EXPECT_EQ(GetJobIn("a", "j").error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(GetJobIn("b", "j").error_message(), "b: no such job");
  EXPECT_EQ(GetJobIn("", "j").error_code(), grpc::StatusCode::ABORTED);

  // Without a session, Reset drops everything, every session included.
  ASSERT_TRUE(ResetIn("").ok());
  EXPECT_EQ(GetJobIn("b", "j").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(GetJobIn("b", "j").error_message().find("b:"), std::string::npos);
  EXPECT_EQ(GetJobIn("", "j").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ControlServiceTest, SessionLoadRefusesServerWideFieldsChangingNothing) {
  ASSERT_TRUE(LoadIn("a", kSessionAOutage).ok());
  const struct {
    const char* field;
    const char* text;
  } kServerWide[] = {
      {"auth", R"pb(auth { require_bearer_token: true })pb"},
      {"health", R"pb(health { service: "" status: "NOT_SERVING" })pb"},
      {"seed", R"pb(seed { jobs { id: "seeded" } })pb"},
      {"job_progression",
       R"pb(job_progression { stage_duration { seconds: 5 } })pb"},
      {"random_seed", R"pb(random_seed: 7)pb"},
  };
  for (const auto& server_wide : kServerWide) {
    SCOPED_TRACE(server_wide.field);
    for (bool merge : {false, true}) {
      // With a rule that would replace "a"'s outage if the load went through.
      const grpc::Status refused =
          LoadIn("a", absl::StrCat(server_wide.text, R"pb(
                   rules {
                     method: "GetJob"
                     behavior { fail { code: "INTERNAL" } }
                   })pb"),
                 merge);
      EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
      EXPECT_THAT(
          refused.error_message(),
          HasSubstr(absl::StrCat(server_wide.field, " is server-wide")));
      EXPECT_THAT(refused.error_message(), HasSubstr("session.textproto"));
    }
  }
  // Nothing changed: "a" keeps its outage, untagged calls need no token, the
  // server is SERVING, and no job was seeded.
  EXPECT_EQ(GetJobIn("a", "seeded").error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(GetJobIn("", "seeded").error_code(), grpc::StatusCode::NOT_FOUND);
  auto health = Health::NewStub(fake_->InProcessChannel());
  grpc::ClientContext check_context;
  HealthCheckResponse check;
  ASSERT_TRUE(health->Check(&check_context, HealthCheckRequest(), &check).ok());
  EXPECT_EQ(check.status(), HealthCheckResponse::SERVING);
}

// Two CI jobs against one fake, at once: each loads its own rules, calls,
// waits for its calls and reads its journal, and sees exactly its own.
TEST_F(ControlServiceTest, ParallelSessionsEachSeeExactlyTheirOwnCalls) {
  constexpr int kCalls = 25;
  struct CiJob {
    std::string session;
    std::string code;  // the session's scripted GetJob failure
    grpc::StatusCode expected;
    std::vector<grpc::StatusCode> seen;
    std::vector<std::string> journal;
    grpc::Status loaded, waited;
  };
  CiJob jobs[] = {
      {"job-1", "UNAVAILABLE", grpc::StatusCode::UNAVAILABLE},
      {"job-2", "FAILED_PRECONDITION", grpc::StatusCode::FAILED_PRECONDITION},
  };
  std::vector<std::thread> threads;
  for (CiJob& job : jobs) {
    threads.emplace_back([this, &job] {
      job.loaded = LoadIn(job.session,
                          absl::StrCat("rules { method: \"GetJob\" behavior { "
                                       "fail { code: \"",
                                       job.code, "\" } } }"));
      if (!job.loaded.ok()) return;
      for (int i = 0; i < kCalls; ++i) {
        job.seen.push_back(GetJobIn(job.session, "j").error_code());
      }
      job.waited = WaitIn(job.session, "GetJob", kCalls, absl::Seconds(30));
      job.journal = JournalOf(job.session);
      ASSERT_TRUE(ClearIn(job.session).ok());
      ASSERT_TRUE(ResetIn(job.session).ok());
    });
  }
  // Untagged traffic meanwhile sees neither job's rules.
  std::vector<grpc::StatusCode> untagged;
  for (int i = 0; i < kCalls; ++i) {
    untagged.push_back(GetJobIn("", "j").error_code());
  }
  for (std::thread& thread : threads) thread.join();

  for (const CiJob& job : jobs) {
    SCOPED_TRACE(job.session);
    ASSERT_TRUE(job.loaded.ok()) << job.loaded.error_message();
    EXPECT_TRUE(job.waited.ok()) << job.waited.error_message();
    EXPECT_EQ(job.seen, std::vector<grpc::StatusCode>(kCalls, job.expected));
    EXPECT_EQ(job.journal,
              std::vector<std::string>(
                  kCalls, absl::StrCat(job.session, ":", job.code)));
  }
  EXPECT_EQ(untagged,
            std::vector<grpc::StatusCode>(kCalls, grpc::StatusCode::NOT_FOUND));
  // Each job cleaned up after itself: only the untagged calls are left.
  EXPECT_THAT(JournalOf(""), ::testing::Each(::testing::StrEq(":NOT_FOUND")));
  EXPECT_EQ(JournalOf("").size(), static_cast<size_t>(kCalls));
}

TEST_F(ControlServiceTest, DetachedServiceIsUnavailable) {
  control_->Detach();
  grpc::ClientContext context;
  ResetResponse response;
  EXPECT_EQ(stub_->Reset(&context, ResetRequest(), &response).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  control_->Attach(fake_.get());
}

TEST_F(ControlServiceTest, BearerTokenIsRequiredWhenConfigured) {
  TearDown();
  constexpr char kToken[] = "s3cret-control-token";
  StartWith({.bearer_token_sha256 = ControlService::HashToken(kToken)});
  auto reset = [&](const std::string& authorization) {
    grpc::ClientContext context;
    if (!authorization.empty()) {
      context.AddMetadata("authorization", authorization);
    }
    ResetResponse response;
    return stub_->Reset(&context, ResetRequest(), &response);
  };
  for (const std::string& refused :
       {std::string(), std::string("Bearer wrong-token"),
        std::string("Basic czNjcmV0"), std::string("Bearer "),
        absl::StrCat("Bearer ", kToken, "x")}) {
    SCOPED_TRACE(refused);
    grpc::Status status = reset(refused);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(status.error_message(),
                AllOf(HasSubstr("workflows.fake.FakeControl"),
                      HasSubstr("--control_token_file")));
    EXPECT_THAT(status.error_message(),
                AllOf(Not(HasSubstr(kToken)), Not(HasSubstr("wrong-token"))));
  }
  EXPECT_TRUE(reset(absl::StrCat("Bearer ", kToken)).ok());
  EXPECT_TRUE(reset(absl::StrCat("bearer ", kToken)).ok());
  // The Workflows services need no control token.
  EXPECT_EQ(GetJob("no-such-job").error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(ControlServiceHashTokenTest, IsTheSha256OfTheToken) {
  const std::string digest = ControlService::HashToken("abc");
  ASSERT_EQ(digest.size(), 32u);
  // SHA-256("abc") starts ba7816bf.
  EXPECT_EQ(static_cast<unsigned char>(digest[0]), 0xba);
  EXPECT_EQ(static_cast<unsigned char>(digest[1]), 0x78);
  EXPECT_NE(ControlService::HashToken("abd"), digest);
}

}  // namespace
}  // namespace fake
}  // namespace workflows
