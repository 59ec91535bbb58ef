// Tests of the consumer's JobRunner using only the public workflows_grpc
// test kit: fixtures, server-side mock expectations, actions, matchers, the
// certificate authority, auth fakes and virtual time.

#include "runner/job_runner.h"

#include <memory>

#include "client/errors.h"
#include "fake_server/job_progression.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/auth_fakes.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace consumer {
namespace {

using ::descarteslabs::workflows::ERROR_OOM;
using ::descarteslabs::workflows::Job;
using ::testing::DoDefault;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using workflows::fake::JobProgression;
using workflows::testing::DeadlineNear;
using workflows::testing::EqualsProto;
using workflows::testing::ExpireDeadline;
using workflows::testing::ExpiringTokenAuth;
using workflows::testing::IsOk;
using workflows::testing::IsOkAndHolds;
using workflows::testing::Partially;
using workflows::testing::ReturnStatus;
using workflows::testing::StatusIs;

class JobRunnerTest : public workflows::testing::WorkflowsTest {
 protected:
  JobRunner Runner() { return JobRunner(shared_client()); }
};

TEST_F(JobRunnerTest, Succeeds) {
  in_memory().SetNextJobProgression(
      JobProgression::Succeed(absl::ZeroDuration()));

  EXPECT_THAT(
      Runner().Run("{\"returns\": 1}"),
      IsOkAndHolds(Partially(EqualsProto("state { stage: SUCCEEDED }"))));
}

TEST_F(JobRunnerTest, TimesOutAndCancelsTheJob) {
  in_memory().SetNextJobProgression(JobProgression::Manual());
  // The server answers DEADLINE_EXCEEDED at once and records the deadline
  // the client sent, so a 2 minute timeout is tested without waiting for it.
  EXPECT_CALL(backend(), WatchJob).WillRepeatedly(ExpireDeadline());
  JobRunner runner(shared_client(), {.timeout = absl::Minutes(2)});

  EXPECT_THAT(runner.Run("{\"returns\": 1}"),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  // The runner's timeout, not the client's 24 h stream default, is what the
  // watch was sent with; and the job was cancelled.
  ASSERT_THAT(journal().Calls("WatchJob"), SizeIs(1));
  EXPECT_THAT(journal().Calls("WatchJob")[0],
              DeadlineNear(absl::Minutes(2), absl::Seconds(5)));
  EXPECT_THAT(journal().Calls("CancelJob"), SizeIs(1));
}

TEST_F(JobRunnerTest, RetriesFlakyUnavailableSubmission) {
  in_memory().SetNextJobProgression(
      JobProgression::Succeed(absl::ZeroDuration()));
  EXPECT_CALL(backend(), CreateJob)
      .WillOnce(ReturnStatus(grpc::StatusCode::UNAVAILABLE, "restarting"))
      .WillOnce(ReturnStatus(grpc::StatusCode::UNAVAILABLE, "restarting"))
      .WillOnce(DoDefault());  // the in-memory backend creates the job

  EXPECT_THAT(Runner().Run("{\"returns\": 1}"), IsOk());
  EXPECT_THAT(journal().Calls("CreateJob"), SizeIs(3));
  EXPECT_THAT(clock().sleeps(), SizeIs(2));  // backoff on virtual time
}

TEST_F(JobRunnerTest, ReportsAJobThatFails) {
  in_memory().SetNextJobProgression(JobProgression::FailIn(
      Job::RUNNING, ERROR_OOM, "out of memory", absl::ZeroDuration()));

  absl::StatusOr<Job> job = Runner().Run("{\"returns\": 1}");

  EXPECT_THAT(job, StatusIs(::testing::_, HasSubstr("code=ERROR_OOM")));
  EXPECT_EQ(workflows::JobErrorCode(job.status()), ERROR_OOM);
}

class JobRunnerAuthTest : public workflows::testing::WorkflowsAuthTest {};

TEST_F(JobRunnerAuthTest, ExpiredTokenIsUnauthenticated) {
  auto auth = std::make_shared<ExpiringTokenAuth>(shared_clock(), kTestToken,
                                                  absl::Minutes(5));
  std::shared_ptr<workflows::Client> client = MakeClient(
      [&](workflows::ClientOptions& options) { options.auth = auth; });
  clock().AdvanceBy(absl::Minutes(10));

  EXPECT_THAT(
      JobRunner(client).Run("{\"returns\": 1}"),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
}

class JobRunnerTlsTest : public workflows::testing::WorkflowsTlsTest {};

TEST_F(JobRunnerTlsTest, UntrustedCertificateIsUnavailable) {
  std::shared_ptr<workflows::Client> client =
      MakeClient([&](workflows::ClientOptions& options) {
        options.certificate = certificate_authority().untrusted_ca_pem();
      });

  EXPECT_THAT(JobRunner(client).Run("{\"returns\": 1}"),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("certificate verify failed")));
}

}  // namespace
}  // namespace consumer
