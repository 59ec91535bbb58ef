// Timeouts, tested through the server's view of the client's deadline: a 5 s
// or 24 h timeout is checked in milliseconds, and a hung call with a short
// deadline ends DEADLINE_EXCEEDED without waiting for anything else.

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::WatchJobRequest;
using testing::DeadlineNear;
using testing::ExpireDeadline;
using testing::HangUntilDeadline;
using ::testing::SizeIs;
using testing::StatusIs;

class TimeoutsTest : public testing::WorkflowsTest {};

TEST_F(TimeoutsTest, UnaryCallsSendAFiveSecondDeadlineByDefault) {
  EXPECT_CALL(backend(), GetJob).WillOnce(ExpireDeadline());
  GetJobRequest request;
  request.set_id("j1");

  EXPECT_THAT(client().GetJob(request, {.retry = RetryPolicy::None()}),
              StatusIs(absl::StatusCode::kDeadlineExceeded));

  ASSERT_THAT(journal().Calls("GetJob"), SizeIs(1));
  EXPECT_THAT(journal().Calls("GetJob")[0],
              DeadlineNear(Client::kDefaultTimeout, absl::Seconds(1)));
}

TEST_F(TimeoutsTest, WatchJobIsSentWithTheDayLongStreamDeadline) {
  EXPECT_CALL(backend(), WatchJob).WillOnce(ExpireDeadline());
  WatchJobRequest request;
  request.set_id("j1");

  // No retry: a stream that fails before its first message is re-opened.
  auto stream = client().WatchJob(request, {.retry = RetryPolicy::None()});
  descarteslabs::workflows::Job::State state;
  EXPECT_FALSE(stream->Next(&state));
  EXPECT_THAT(stream->Finish(), StatusIs(absl::StatusCode::kDeadlineExceeded));

  ASSERT_THAT(journal().Calls("WatchJob"), SizeIs(1));
  EXPECT_THAT(journal().Calls("WatchJob")[0],
              DeadlineNear(absl::Hours(24), absl::Seconds(5)));
}

TEST_F(TimeoutsTest, HungCallWithShortDeadlineEndsDeadlineExceeded) {
  EXPECT_CALL(backend(), GetJob).WillOnce(HangUntilDeadline());
  GetJobRequest request;
  request.set_id("j1");

  EXPECT_THAT(client().GetJob(request, {.timeout = absl::Milliseconds(50),
                                        .retry = RetryPolicy::None()}),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(TimeoutsTest, CustomTimeoutIsWhatTheServerSees) {
  EXPECT_CALL(backend(), GetJob).WillOnce(ExpireDeadline());
  GetJobRequest request;
  request.set_id("j1");

  EXPECT_THAT(client().GetJob(request, {.timeout = absl::Minutes(3),
                                        .retry = RetryPolicy::None()}),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(journal().Calls("GetJob").at(0),
              DeadlineNear(absl::Minutes(3), absl::Seconds(1)));
}

}  // namespace
}  // namespace workflows
