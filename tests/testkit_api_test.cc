// The test kit's own API: PassThrough() in composite actions, waits that
// explain themselves, and readable status printing.

#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "client/errors.h"
#include "fake_server/fake_call_context.h"
#include "fake_server/in_memory_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/failures.h"
#include "testing/matchers.h"
#include "testing/mock_workflows_backend.h"
#include "testing/waits.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::CreateJobRequest;
using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;
using ::descarteslabs::workflows::ListJobsRequest;
using ::testing::AllOf;
using testing::Delay;
using testing::EqualsProto;
using testing::FailTimesThen;
using testing::FailuresIn;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::IsOkAndHolds;
using ::testing::Not;
using testing::Partially;
using testing::PassThrough;
using testing::Printable;
using testing::ReturnStatus;
using ::testing::SizeIs;
using testing::StatusIs;
using testing::WaitForCalls;
using testing::WaitForInFlight;
using testing::WaitUntilIdle;
using testing::WithWarnings;

// DoDefault() nested in the kit's actions is refused at compile time (the
// static_assert in CheckComposable); PassThrough() is the composable form.
static_assert(
    !testing::actions_internal::kComposable<decltype(::testing::DoDefault())>);
static_assert(testing::actions_internal::kComposable<
              decltype(PassThrough(std::shared_ptr<fake::Backend>()))>);
static_assert(testing::actions_internal::kComposable<
              decltype(ReturnStatus(grpc::StatusCode::UNAVAILABLE))>);

class TestKitApiTest : public testing::WorkflowsTest {
 protected:
  std::string CreateJob() {
    CreateJobRequest request;
    request.set_serialized_graft("{\"returns\": 1}");
    auto job = client().CreateJob(request);
    EXPECT_THAT(job, IsOk());
    return job.ok() ? job->id() : "";
  }
};

TEST_F(TestKitApiTest, FailTwiceThenPassThroughToTheInMemoryBackend) {
  const std::string id = CreateJob();
  EXPECT_CALL(backend(), GetJob)
      .Times(3)
      .WillRepeatedly(FailTimesThen(
          2, ReturnStatus(grpc::StatusCode::UNAVAILABLE, "backend restarting"),
          PassThrough()));
  GetJobRequest request;
  request.set_id(id);

  auto job = client().GetJob(request);

  // The job the in-memory backend created, found after two backoffs.
  EXPECT_THAT(job, IsOkAndHolds(
                       Partially(EqualsProto(absl::StrCat("id: '", id, "'")))));
  EXPECT_THAT(clock().sleeps(), SizeIs(2));
}

TEST_F(TestKitApiTest, PassThroughComposesWithStreamsAndOtherActions) {
  const std::string id = CreateJob();
  EXPECT_CALL(backend(), ListJobs)
      .WillOnce(WithWarnings({"listing is slow"},
                             Delay(absl::ZeroDuration(), PassThrough())));
  auto jobs = client().ListJobs(ListJobsRequest());
  std::vector<std::string> ids;
  Job job;
  while (jobs->Next(&job)) ids.push_back(job.id());

  EXPECT_THAT(jobs->Finish(), IsOk());
  EXPECT_THAT(ids, ::testing::ElementsAre(id));
}

TEST(PassThroughTest, ForwardsToTheGivenBackendWithoutAServer) {
  auto in_memory = std::make_shared<fake::InMemoryBackend>();
  ::testing::StrictMock<testing::MockWorkflowsBackend> mock;
  EXPECT_CALL(mock, CreateJob).WillOnce(PassThrough(in_memory));
  EXPECT_CALL(mock, GetJob)
      .WillRepeatedly(FailTimesThen(1,
                                    ReturnStatus(grpc::StatusCode::UNAVAILABLE),
                                    PassThrough(in_memory)));
  fake::FakeCallContext call;
  CreateJobRequest create;
  create.set_serialized_graft("{}");
  Job created;
  ASSERT_THAT(mock.CreateJob(&call, create, &created), IsOk());
  GetJobRequest get;
  get.set_id(created.id());
  Job first;
  Job second;

  EXPECT_THAT(mock.GetJob(&call, get, &first),
              StatusIs(grpc::StatusCode::UNAVAILABLE));
  EXPECT_THAT(mock.GetJob(&call, get, &second), IsOk());
  EXPECT_EQ(second.id(), created.id());
}

TEST_F(TestKitApiTest, WaitForCallsSucceedsOnceTheCallsHaveEnded) {
  CreateJob();
  CreateJob();

  EXPECT_TRUE(WaitForCalls(server(), "CreateJob", 2, absl::Seconds(10)));
  EXPECT_TRUE(
      WaitForCalls(journal(), "JobAPI/CreateJob", 1, absl::Seconds(10)));
  EXPECT_TRUE(WaitUntilIdle(server(), absl::Seconds(10)));
}

TEST_F(TestKitApiTest, FailedWaitsSayWhatTheServerSaw) {
  CreateJob();

  const ::testing::AssertionResult not_yet =
      WaitForCalls(server(), "GetJob", 3, absl::ZeroDuration());
  EXPECT_FALSE(not_yet);
  EXPECT_THAT(not_yet.message(),
              AllOf(HasSubstr("waiting for 3 calls to GetJob"),
                    HasSubstr("DEADLINE_EXCEEDED"), HasSubstr("CreateJob")));

  const ::testing::AssertionResult typo =
      WaitForCalls(server(), "GetJbo", 1, absl::Seconds(10));
  EXPECT_FALSE(typo);
  EXPECT_THAT(typo.message(), AllOf(HasSubstr("INVALID_ARGUMENT"),
                                    HasSubstr("did you mean \"GetJob\"")));

  const ::testing::AssertionResult none_running =
      WaitForInFlight(server(), "WatchJob", 1, absl::ZeroDuration());
  EXPECT_FALSE(none_running);
  EXPECT_THAT(none_running.message(),
              HasSubstr("waiting for 1 call to WatchJob in flight"));

  // As a test author sees it.
  const std::vector<std::string> failures = FailuresIn([&] {
    EXPECT_TRUE(WaitForCalls(server(), "GetJob", 3, absl::ZeroDuration()));
  });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0], HasSubstr("waiting for 3 calls to GetJob"));
  std::cout << "WaitForCalls failure as printed:\n" << failures[0] << "\n";
}

TEST(PrintingTest, GrpcValuesPrintReadablyWithoutNamespaceGrpc) {
  EXPECT_EQ(::testing::PrintToString(
                Printable(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"))),
            "UNAVAILABLE: down");
  EXPECT_EQ(::testing::PrintToString(Printable(grpc::Status::OK)), "OK");
  EXPECT_EQ(::testing::PrintToString(Printable(grpc::StatusCode::NOT_FOUND)),
            "NOT_FOUND (5)");
  EXPECT_EQ(Printable(grpc::StatusCode::OK), Printable(grpc::StatusCode::OK));
  EXPECT_NE(Printable(grpc::Status(grpc::StatusCode::UNAVAILABLE, "a")),
            Printable(grpc::Status(grpc::StatusCode::UNAVAILABLE, "b")));

  const grpc::Status status(grpc::StatusCode::UNAVAILABLE, "down");
  const std::vector<std::string> failures = FailuresIn([&] {
    EXPECT_THAT(status, IsOk());
    EXPECT_EQ(Printable(status.error_code()), Printable(grpc::StatusCode::OK));
  });
  ASSERT_THAT(failures, SizeIs(2));
  EXPECT_THAT(failures[0], HasSubstr("whose status is UNAVAILABLE: down"));
  EXPECT_THAT(failures[1],
              AllOf(HasSubstr("UNAVAILABLE (14)"), HasSubstr("OK (0)")));
  for (const std::string& failure : failures) {
    std::cout << "failure as printed:\n" << failure << "\n";
  }
}

TEST(PrintingTest, RetriedStatusPrintsItsAttemptsCompactly) {
  absl::Status attempt = absl::UnavailableError(
      "failed to connect to all addresses; last error: UNKNOWN: "
      "ipv4:127.0.0.1:1: Failed to connect to remote host: Connection "
      "refused");
  const absl::Status status =
      RetryExhaustedError("GetWorkflow", std::vector<absl::Status>(6, attempt));
  const std::vector<std::string> failures =
      FailuresIn([&] { EXPECT_THAT(status, IsOk()); });
  ASSERT_THAT(failures, SizeIs(1));
  EXPECT_THAT(failures[0],
              AllOf(HasSubstr("RetryAttempts='6x UNAVAILABLE: failed to "
                              "connect to all addresses%3B last error"),
                    HasSubstr("whose code is UNAVAILABLE"),
                    Not(HasSubstr("\\x")), Not(HasSubstr(":2:14"))));
  EXPECT_THAT(RetryAttempts(status), SizeIs(6));
  std::cout << "retried status failure as printed:\n" << failures[0] << "\n";
}

}  // namespace
}  // namespace workflows
