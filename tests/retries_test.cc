// Retries under virtual time: backoff sleeps go through the fixture's
// SimulatedClock, so long backoffs cost nothing.

#include "client/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::CreateJobRequest;
using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;
using ::testing::Each;
using testing::FailTimesThen;
using testing::IsOk;
using ::testing::Le;
using testing::ReplyText;
using testing::ReturnStatus;
using testing::ReturnWithTrailers;
using ::testing::SizeIs;
using testing::StatusIs;

class RetriesTest : public testing::WorkflowsTest {};

TEST_F(RetriesTest, UnavailableTwiceThenOkSucceedsAfterExactlyThreeAttempts) {
  EXPECT_CALL(backend(), GetJob)
      .Times(3)
      .WillRepeatedly(FailTimesThen(
          2, ReturnStatus(grpc::StatusCode::UNAVAILABLE, "backend restarting"),
          ReplyText("id: 'j1' state { stage: RUNNING }")));
  GetJobRequest request;
  request.set_id("j1");

  auto job = client().GetJob(request);

  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->state().stage(), Job::RUNNING);
  EXPECT_THAT(journal().Calls("GetJob"), SizeIs(3));
  EXPECT_THAT(clock().sleeps(), SizeIs(2));  // two backoffs, no real waiting
}

TEST_F(RetriesTest, SixAttemptsWithSixtySecondCapsTakeNoRealTime) {
  EXPECT_CALL(backend(), GetJob)
      .Times(6)
      .WillRepeatedly(ReturnStatus(grpc::StatusCode::UNAVAILABLE, "down"));
  RetryPolicy policy = RetryPolicy::Default();
  policy.initial_backoff = absl::Seconds(60);
  GetJobRequest request;
  request.set_id("j1");
  const absl::Time start = absl::Now();

  auto job = client().GetJob(request, {.retry = policy});

  EXPECT_TRUE(IsRetryExhausted(job.status())) << job.status();
  EXPECT_THAT(RetryAttempts(job.status()), SizeIs(6));
  EXPECT_THAT(clock().sleeps(), SizeIs(5));
  EXPECT_THAT(clock().sleeps(), Each(Le(absl::Seconds(60))));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));  // 5 x 60 s, virtually
}

TEST_F(RetriesTest, CreateJob429IsNotRetriedByDefault) {
  EXPECT_CALL(backend(), CreateJob)
      .WillOnce(ReturnWithTrailers(
          {{"grpc-retry-pushback-ms", "250"}},
          ReturnStatus(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down")));
  CreateJobRequest request;
  request.set_serialized_graft("{}");

  EXPECT_THAT(client().CreateJob(request),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(journal().Calls("CreateJob"), SizeIs(1));
}

TEST_F(RetriesTest, CreateJob429WithNumRetriesHonoursPushback) {
  EXPECT_CALL(backend(), CreateJob)
      .Times(2)
      .WillRepeatedly(FailTimesThen(
          1,
          ReturnWithTrailers(
              {{"grpc-retry-pushback-ms", "2500"}},
              ReturnStatus(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down")),
          ReplyText("id: 'job-1' state { stage: QUEUED }")));
  CreateJobRequest request;
  request.set_serialized_graft("{}");

  auto job = client().CreateJob(request, {.num_retries = 1});

  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->id(), "job-1");
  ASSERT_THAT(clock().sleeps(), SizeIs(1));
  // The pushback plus up to 1 s of jitter, instead of the 0.1 s backoff.
  EXPECT_GE(clock().sleeps()[0], absl::Milliseconds(2500));
  EXPECT_LE(clock().sleeps()[0], absl::Milliseconds(3500));
}

TEST_F(RetriesTest, PermissionDeniedWithRetryAfterIsRetriedAfterThatDelay) {
  EXPECT_CALL(backend(), GetJob)
      .Times(2)
      .WillRepeatedly(FailTimesThen(
          1,
          ReturnWithTrailers(
              {{"retry-after", "7"}},
              ReturnStatus(grpc::StatusCode::PERMISSION_DENIED, "propagating")),
          ReplyText("id: 'j1'")));
  GetJobRequest request;
  request.set_id("j1");

  EXPECT_THAT(client().GetJob(request), IsOk());
  EXPECT_THAT(clock().sleeps(), ::testing::ElementsAre(absl::Seconds(7)));
}

// The Python client sleeps whatever `retry-after` says; this one sleeps at
// most RetryPolicy::max_server_delay (60 s) before each retry.
TEST_F(RetriesTest, RetryAfterOfThreeYearsSleepsAtMostTheCapEachTime) {
  EXPECT_CALL(backend(), GetJob)
      .Times(6)
      .WillRepeatedly(
          ReturnWithTrailers({{"retry-after", "99999999"}},
                             ReturnStatus(grpc::StatusCode::PERMISSION_DENIED,
                                          "come back later")));
  GetJobRequest request;
  request.set_id("j1");

  auto job = client().GetJob(request);

  EXPECT_THAT(job, StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_TRUE(IsRetryExhausted(job.status()));
  EXPECT_THAT(clock().sleeps(), SizeIs(5));
  EXPECT_THAT(clock().sleeps(), Each(absl::Seconds(60)));
}

TEST_F(RetriesTest, PushbackOfThreeYearsSleepsAtMostTheCap) {
  EXPECT_CALL(backend(), CreateJob)
      .Times(3)
      .WillRepeatedly(ReturnWithTrailers(
          {{"grpc-retry-pushback-ms", "99999999000"}},
          ReturnStatus(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down")));
  CreateJobRequest request;
  request.set_serialized_graft("{}");

  auto job = client().CreateJob(request, {.num_retries = 2});

  EXPECT_THAT(job, StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(clock().sleeps(), SizeIs(2));
  EXPECT_THAT(clock().sleeps(), Each(Le(absl::Seconds(60))));
}

TEST_F(RetriesTest, BudgetBoundsTheTotalVirtualTime) {
  EXPECT_CALL(backend(), GetJob)
      .WillRepeatedly(ReturnStatus(grpc::StatusCode::UNAVAILABLE, "down"));
  RetryPolicy policy = RetryPolicy::Default();
  policy.initial_backoff = absl::Seconds(60);  // 60 s (+ jitter, capped)
  GetJobRequest request;
  request.set_id("j1");
  const absl::Time start = clock().Now();

  auto job =
      client().GetJob(request, {.retry = policy, .budget = absl::Seconds(150)});

  EXPECT_THAT(job, StatusIs(absl::StatusCode::kDeadlineExceeded,
                            ::testing::HasSubstr("2m30s budget")));
  EXPECT_THAT(std::string(job.status().message()),
              ::testing::HasSubstr("last error: UNAVAILABLE: down"));
  EXPECT_LE(clock().Now() - start, absl::Seconds(150));
  // Two 60 s backoffs fit, a third would overrun and is not slept.
  EXPECT_THAT(clock().sleeps(), SizeIs(2));
  EXPECT_THAT(RetryAttempts(job.status()), SizeIs(3));
  EXPECT_THAT(journal().Calls("GetJob"), SizeIs(3));
}

TEST_F(RetriesTest, WithoutABudgetSixAttemptsRunAsInPython) {
  EXPECT_CALL(backend(), GetJob)
      .Times(6)
      .WillRepeatedly(ReturnStatus(grpc::StatusCode::UNAVAILABLE, "down"));
  RetryPolicy policy = RetryPolicy::Default();
  policy.initial_backoff = absl::Seconds(60);
  GetJobRequest request;
  request.set_id("j1");
  const absl::Time start = clock().Now();

  auto job = client().GetJob(request, {.retry = policy});

  EXPECT_THAT(job, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(IsRetryExhausted(job.status()));
  EXPECT_THAT(clock().sleeps(), Each(absl::Seconds(60)));
  EXPECT_EQ(clock().Now() - start, absl::Seconds(300));
}

}  // namespace
}  // namespace workflows
