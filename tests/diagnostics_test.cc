// What a test author sees when a call is unscripted, does not match its
// expectation, or never comes: each through a real RPC from the client to the
// fake server. gMock reports unexpected calls from gRPC's server threads, so
// failures are intercepted on all threads, not just the test's.

#include <functional>
#include <string>
#include <vector>

#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/failures.h"
#include "testing/matchers.h"
#include "testing/waits.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::CancelJobRequest;
using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;
using ::testing::_;
using ::testing::AllOf;
using ::testing::AnyNumber;
using testing::EqualsProto;
using testing::FailuresIn;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using testing::ReplyText;
using ::testing::SizeIs;
using testing::StatusIs;
using testing::WaitUntilIdle;

constexpr char kGetJobMethod[] = "/descarteslabs.workflows.JobAPI/GetJob";

GetJobRequest JobRequest(const std::string& id) {
  GetJobRequest request;
  request.set_id(id);
  return request;
}

// No retries: each test is about one call and what it reports.
CallOptions Once() { return {.retry = RetryPolicy::None()}; }

// Placeholder until the call under test has answered.
CallResult<Job> NotCalled() { return absl::UnknownError("not called"); }

class StrictDiagnosticsTest : public testing::StrictWorkflowsTest {};

TEST_F(StrictDiagnosticsTest, UnscriptedCallFailsNamingMethodAndRequest) {
  CallResult<Job> result = NotCalled();
  const std::vector<std::string> failures = FailuresIn([&] {
    result = client().GetJob(JobRequest("unscripted-job"), Once());
    // Orders the server thread's report before the reads below.
    ASSERT_TRUE(WaitUntilIdle(server(), absl::Seconds(10)));
  });

  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], AllOf(HasSubstr("Uninteresting mock function call"),
                                 HasSubstr("GetJob("), HasSubstr(kGetJobMethod),
                                 HasSubstr("id: \"unscripted-job\"")));
  // Answered at once by the mock (a hang would be DEADLINE_EXCEEDED), and not
  // by the in-memory backend (which would say NOT_FOUND).
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnimplemented,
                               HasSubstr("GetJob matched no expectation")));
}

TEST_F(StrictDiagnosticsTest, MismatchPrintsEveryExpectationsDiff) {
  EXPECT_CALL(backend(), GetJob(_, EqualsProto("id: 'job-a'"), _))
      .Times(AnyNumber());
  EXPECT_CALL(backend(), GetJob(_, EqualsProto("id: 'job-b'"), _))
      .Times(AnyNumber());
  CallResult<Job> result = NotCalled();
  const std::vector<std::string> failures = FailuresIn([&] {
    result = client().GetJob(JobRequest("job-c"), Once());
    // Orders the server thread's report before the reads below.
    ASSERT_TRUE(WaitUntilIdle(server(), absl::Seconds(10)));
  });

  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0],
              AllOf(HasSubstr("Unexpected mock function call"),
                    HasSubstr("id: \"job-c\""),
                    HasSubstr("tried the following 2 expectations"),
                    HasSubstr("modified: id: \"job-a\" -> \"job-c\""),
                    HasSubstr("modified: id: \"job-b\" -> \"job-c\"")));
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnimplemented));
}

class DiagnosticsTest : public testing::WorkflowsTest {};

TEST_F(DiagnosticsTest, MismatchedRequestFailsWithTheRequestAndTheDiff) {
  EXPECT_CALL(backend(), GetJob(_, EqualsProto("id: 'expected-job'"), _))
      .Times(AnyNumber())
      .WillRepeatedly(ReplyText("id: 'expected-job'"));
  CallResult<Job> result = NotCalled();
  const std::vector<std::string> failures = FailuresIn([&] {
    result = client().GetJob(JobRequest("actual-job"), Once());
    // Orders the server thread's report before the reads below.
    ASSERT_TRUE(WaitUntilIdle(server(), absl::Seconds(10)));
  });

  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(
      failures[0],
      AllOf(HasSubstr("Unexpected mock function call"), HasSubstr("GetJob("),
            HasSubstr(kGetJobMethod), HasSubstr("id: \"actual-job\""),
            HasSubstr("Expected arg #1: equals proto <id: 'expected-job'>"),
            HasSubstr("modified: id: \"expected-job\" -> \"actual-job\"")));
  // The call still got an answer, from the in-memory backend: never a hang.
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(DiagnosticsTest, UnsatisfiedExpectationFailsAtTeardown) {
  EXPECT_CALL(backend(), CancelJob(_, EqualsProto("id: 'never-cancelled'"), _))
      .WillOnce(testing::ReturnStatus(grpc::StatusCode::OK));

  const std::vector<std::string> failures = FailuresIn([&] { TearDown(); });

  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(
      failures[0],
      AllOf(HasSubstr("EXPECT_CALL(backend(), CancelJob("),
            HasSubstr("Expected: to be called once"),
            HasSubstr("Actual: never called - unsatisfied and active")));
}

TEST_F(DiagnosticsTest, SatisfiedExpectationsPassTeardown) {
  EXPECT_CALL(backend(), GetJob(_, EqualsProto("id: 'j1'"), _))
      .WillOnce(ReplyText("id: 'j1'"));
  ASSERT_THAT(client().GetJob(JobRequest("j1"), Once()), testing::IsOk());

  EXPECT_THAT(FailuresIn([&] { TearDown(); }), IsEmpty());
}

TEST_F(DiagnosticsTest, NiceFixtureIsSilentAboutUninterestingCalls) {
  ::testing::internal::CaptureStdout();
  CallResult<Job> result = NotCalled();
  const std::vector<std::string> failures = FailuresIn([&] {
    result = client().GetJob(JobRequest("nice-job"), Once());
    // Orders the server thread's report before the reads below.
    ASSERT_TRUE(WaitUntilIdle(server(), absl::Seconds(10)));
  });
  const std::string out = ::testing::internal::GetCapturedStdout();

  EXPECT_THAT(failures, IsEmpty());
  EXPECT_THAT(out, Not(HasSubstr("GMOCK WARNING")));
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kNotFound));
}

class NaggyDiagnosticsTest : public testing::NaggyWorkflowsTest {};

TEST_F(NaggyDiagnosticsTest, UninterestingCallWarnsAndFallsThrough) {
  ::testing::internal::CaptureStdout();
  CallResult<Job> result = NotCalled();
  const std::vector<std::string> failures = FailuresIn([&] {
    result = client().GetJob(JobRequest("naggy-job"), Once());
    // Orders the server thread's report before the reads below.
    ASSERT_TRUE(WaitUntilIdle(server(), absl::Seconds(10)));
  });
  const std::string out = ::testing::internal::GetCapturedStdout();

  EXPECT_THAT(failures, IsEmpty());
  EXPECT_THAT(out, AllOf(HasSubstr("GMOCK WARNING"),
                         HasSubstr("Uninteresting mock function call"),
                         HasSubstr("GetJob("), HasSubstr(kGetJobMethod),
                         HasSubstr("id: \"naggy-job\"")));
  // The in-memory backend answered: it knows no such job.
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace workflows
