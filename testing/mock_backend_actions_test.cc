// MockWorkflowsBackend, actions and matchers, exercised by calling the mock
// backend directly with a FakeCallContext (no server).

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "fake_server/fake_call_context.h"
#include "fake_server/in_memory_backend.h"
#include "fake_server/journal.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "proto/rpc_status.pb.h"
#include "testing/actions.h"
#include "testing/matchers.h"
#include "testing/mock_workflows_backend.h"

namespace workflows {
namespace testing {
namespace {

using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;
using ::descarteslabs::workflows::WatchJobRequest;
using fake::FakeCallContext;
using fake::FakeServerStream;
using ::testing::_;
using ::testing::HasSubstr;
using ::testing::NiceMock;
using ::testing::Not;
using ::testing::Return;
using ::testing::StrictMock;

GetJobRequest JobRequest(const std::string& id) {
  GetJobRequest request;
  request.set_id(id);
  return request;
}

Job MakeJob(const std::string& id, Job::Stage stage) {
  Job job;
  job.set_id(id);
  job.mutable_state()->set_stage(stage);
  return job;
}

TEST(MockWorkflowsBackendTest,
     WithoutFallthroughUnmatchedCallsAreUnimplemented) {
  NiceMock<MockWorkflowsBackend> backend;
  FakeCallContext call;
  Job job;
  EXPECT_THAT(backend.GetJob(&call, JobRequest("j1"), &job),
              StatusIs(grpc::StatusCode::UNIMPLEMENTED, HasSubstr("GetJob")));
}

TEST(MockWorkflowsBackendTest, FallthroughReachesInMemoryBackend) {
  auto in_memory = std::make_shared<fake::InMemoryBackend>();
  NiceMock<MockWorkflowsBackend> backend(in_memory);
  FakeCallContext call;
  Job job;
  EXPECT_THAT(backend.GetJob(&call, JobRequest("missing"), &job),
              StatusIs(grpc::StatusCode::NOT_FOUND));
}

TEST(MockWorkflowsBackendTest, StrictMockFailsOnUninterestingCall) {
  StrictMock<MockWorkflowsBackend> backend;
  FakeCallContext call;
  Job job;
  EXPECT_NONFATAL_FAILURE(backend.GetJob(&call, JobRequest("j1"), &job),
                          "Uninteresting mock function call");
}

TEST(MockWorkflowsBackendTest, MismatchExplainsTheProtoDiffAndNeverHangs) {
  NiceMock<MockWorkflowsBackend> backend;
  EXPECT_CALL(backend, GetJob(_, EqualsProto("id: 'expected'"), _))
      .WillRepeatedly(Return(grpc::Status::OK));
  FakeCallContext call;
  Job job;
  grpc::Status status;
  EXPECT_NONFATAL_FAILURE(
      status = backend.GetJob(&call, JobRequest("actual"), &job),
      "modified: id: \"expected\" -> \"actual\"");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

TEST(ActionsTest, ReturnWithTrailersAndDetails) {
  NiceMock<MockWorkflowsBackend> backend;
  google::rpc::ErrorInfo info;
  info.set_reason("QUOTA");
  EXPECT_CALL(backend, CreateJob)
      .WillOnce(ReturnWithTrailers(
          {{"grpc-retry-pushback-ms", "250"}},
          ReturnWithDetails(grpc::StatusCode::RESOURCE_EXHAUSTED, "429",
                            info)));
  FakeCallContext call;
  Job job;
  const grpc::Status status = backend.CreateJob(
      &call, descarteslabs::workflows::CreateJobRequest(), &job);
  EXPECT_THAT(status, StatusIs(grpc::StatusCode::RESOURCE_EXHAUSTED, "429"));
  EXPECT_THAT(call.trailing_metadata(),
              HasMetadata("grpc-retry-pushback-ms", "250"));
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo unpacked;
  ASSERT_TRUE(details.details(0).UnpackTo(&unpacked));
  EXPECT_EQ(unpacked.reason(), "QUOTA");
}

TEST(ActionsTest, FailTimesThenSharesItsCountAcrossCalls) {
  NiceMock<MockWorkflowsBackend> backend;
  EXPECT_CALL(backend, GetJob)
      .WillRepeatedly(
          FailTimesThen(2, ReturnStatus(grpc::StatusCode::UNAVAILABLE, "down"),
                        Reply(MakeJob("j1", Job::RUNNING))));
  FakeCallContext call;
  std::vector<grpc::StatusCode> codes;
  for (int i = 0; i < 3; ++i) {
    Job job;
    codes.push_back(backend.GetJob(&call, JobRequest("j1"), &job).error_code());
    if (i == 2) {
      EXPECT_THAT(job, EqualsProto("id: 'j1' state { stage: RUNNING }"));
    }
  }
  EXPECT_THAT(codes, ::testing::ElementsAre(grpc::StatusCode::UNAVAILABLE,
                                            grpc::StatusCode::UNAVAILABLE,
                                            grpc::StatusCode::OK));
}

TEST(ActionsTest, WithWarningsAddsInitialMetadata) {
  NiceMock<MockWorkflowsBackend> backend;
  EXPECT_CALL(backend, GetJob)
      .WillOnce(
          WithWarnings({"old channel", "slow down"}, ReplyText("id: 'j1'")));
  FakeCallContext call;
  Job job;
  EXPECT_THAT(backend.GetJob(&call, JobRequest("j1"), &job), IsOk());
  EXPECT_EQ(job.id(), "j1");
  EXPECT_THAT(call.initial_metadata(),
              HasMetadata("x-wf-warnings", "slow down"));
}

TEST(ActionsTest, DelayBeyondDeadlineExpiresAtOnce) {
  NiceMock<MockWorkflowsBackend> backend;
  EXPECT_CALL(backend, GetJob)
      .WillOnce(Delay(absl::Hours(1), Return(grpc::Status::OK)));
  FakeCallContext call;
  call.set_deadline(absl::Now() + absl::Seconds(5));
  Job job;
  const absl::Time start = absl::Now();
  EXPECT_THAT(backend.GetJob(&call, JobRequest("j1"), &job),
              StatusIs(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

// A FakeCallContext that says when an action starts waiting on it, so a test
// can cancel the call while the action is inside its wait.
class WaitSignallingCallContext : public FakeCallContext {
 public:
  bool WaitUntilDone(absl::Duration timeout) override {
    if (!waiting_.HasBeenNotified()) waiting_.Notify();
    return FakeCallContext::WaitUntilDone(timeout);
  }
  void WaitForWaiter() { waiting_.WaitForNotification(); }

 private:
  absl::Notification waiting_;
};

TEST(ActionsTest, DelayCancelledWhileWaitingEndsCancelledWithoutInnerAction) {
  NiceMock<MockWorkflowsBackend> backend;
  ::testing::MockFunction<grpc::Status()> inner;
  EXPECT_CALL(inner, Call).Times(0);
  // No deadline, so only the cancellation can end the hour's delay.
  EXPECT_CALL(backend, GetJob)
      .WillOnce(Delay(absl::Hours(1),
                      ::testing::InvokeWithoutArgs(inner.AsStdFunction())));
  WaitSignallingCallContext call;
  grpc::Status status;
  std::thread caller([&] {
    Job job;
    status = backend.GetJob(&call, JobRequest("j1"), &job);
  });
  call.WaitForWaiter();
  call.Cancel();
  caller.join();
  EXPECT_THAT(status, StatusIs(grpc::StatusCode::CANCELLED));
}

TEST(ActionsTest, HangUntilDeadlineEndsWhenCancelled) {
  NiceMock<MockWorkflowsBackend> backend;
  absl::Notification entered;
  EXPECT_CALL(backend, GetJob)
      .WillOnce(::testing::DoAll(
          ::testing::InvokeWithoutArgs([&] { entered.Notify(); }),
          HangUntilDeadline()));
  FakeCallContext call;
  grpc::Status status;
  std::thread caller([&] {
    Job job;
    status = backend.GetJob(&call, JobRequest("j1"), &job);
  });
  entered.WaitForNotification();
  call.Cancel();
  caller.join();
  EXPECT_THAT(status, StatusIs(grpc::StatusCode::CANCELLED));
}

TEST(ActionsTest, StreamThenFail) {
  NiceMock<MockWorkflowsBackend> backend;
  std::vector<Job::State> states(2);
  states[0].set_stage(Job::QUEUED);
  states[1].set_stage(Job::RUNNING);
  EXPECT_CALL(backend, WatchJob)
      .WillOnce(StreamThenFail(
          states, grpc::Status(grpc::StatusCode::UNAVAILABLE, "reset")));
  FakeCallContext call;
  FakeServerStream<Job::State> stream;
  EXPECT_THAT(backend.WatchJob(&call, WatchJobRequest(), &stream),
              StatusIs(grpc::StatusCode::UNAVAILABLE, "reset"));
  EXPECT_THAT(stream.messages(),
              ::testing::ElementsAre(EqualsProto("stage: QUEUED"),
                                     EqualsProto("stage: RUNNING")));
}

TEST(ActionsTest, StreamMessagesEndsOkAndZeroMessagesIsAllowed) {
  NiceMock<MockWorkflowsBackend> backend;
  EXPECT_CALL(backend, WatchJob)
      .WillOnce(StreamMessages(std::vector<Job::State>{}));
  FakeCallContext call;
  FakeServerStream<Job::State> stream;
  EXPECT_THAT(backend.WatchJob(&call, WatchJobRequest(), &stream), IsOk());
  EXPECT_TRUE(stream.messages().empty());
}

TEST(MatchersTest, StatusMatchersOnEveryStatusType) {
  EXPECT_THAT(absl::NotFoundError("no job j1"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("j1")));
  EXPECT_THAT(grpc::Status(grpc::StatusCode::UNAVAILABLE, "x"),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(absl::OkStatus(), IsOk());
  EXPECT_THAT(absl::StatusOr<int>(absl::InternalError("boom")), Not(IsOk()));
  EXPECT_THAT(absl::StatusOr<int>(7), IsOkAndHolds(7));
  EXPECT_THAT(absl::StatusOr<int>(7), Not(IsOkAndHolds(8)));
}

TEST(MatchersTest, EqualsProtoExplainsDifferences) {
  const Job job = MakeJob("j1", Job::RUNNING);
  EXPECT_THAT(job, Partially(EqualsProto("state { stage: RUNNING }")));
  EXPECT_THAT(job, Not(EqualsProto("state { stage: RUNNING }")));
  EXPECT_THAT(job, EqualsProto(MakeJob("j1", Job::RUNNING)));
  ::testing::StringMatchResultListener listener;
  EXPECT_FALSE(::testing::ExplainMatchResult(
      EqualsProto("id: 'j1' state { stage: FAILED }"), job, &listener));
  EXPECT_THAT(listener.str(),
              HasSubstr("modified: state.stage: FAILED -> RUNNING"));
}

TEST(MatchersTest, MetadataAndDeadlineOnRecordedCalls) {
  fake::RecordedCall call;
  auto* entry = call.add_request_metadata();
  entry->set_key("authorization");
  // As the journal records it: redacted.
  entry->set_value(fake::Journal::RedactSecret("Bearer t0ken"));
  call.mutable_deadline_remaining()->set_seconds(5);
  EXPECT_THAT(call, HasBearerToken("t0ken"));
  EXPECT_THAT(call, Not(HasBearerToken("other")));
  EXPECT_THAT(call, DeadlineNear(absl::Seconds(5), absl::Milliseconds(100)));
  EXPECT_THAT(call, Not(DeadlineNear(absl::Hours(24), absl::Seconds(1))));
  fake::RecordedCall no_deadline;
  EXPECT_THAT(no_deadline,
              Not(DeadlineNear(absl::Seconds(5), absl::Seconds(1))));
}

}  // namespace
}  // namespace testing
}  // namespace workflows
