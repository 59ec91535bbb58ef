// Client::WatchHealth against the fake: status changes arrive in order,
// cancellation (from the callback or another thread) ends the stream
// cleanly, and deadlines and failed openings behave as for every stream.

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using testing::DeadlineNear;
using ::testing::ElementsAre;
using testing::ExpireDeadline;
using testing::IsOk;
using ::testing::SizeIs;
using testing::StatusIs;

class HealthWatchTest : public testing::WorkflowsTest {
 protected:
  absl::Status WaitUntilWatching(int count = 1) {
    return journal().WaitForInFlight("Watch", count, absl::Seconds(10));
  }
};

TEST_F(HealthWatchTest, StatusChangesArriveInOrder) {
  std::unique_ptr<StreamReader<HealthCheckResponse>> statuses =
      client().WatchHealth(HealthCheckRequest());
  HealthCheckResponse status;
  ASSERT_TRUE(statuses->Next(&status)) << statuses->Finish();
  EXPECT_EQ(status.status(), HealthCheckResponse::SERVING);

  server().SetHealth("", HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(statuses->Next(&status)) << statuses->Finish();
  EXPECT_EQ(status.status(), HealthCheckResponse::NOT_SERVING);

  server().SetHealth("", HealthCheckResponse::SERVING);
  ASSERT_TRUE(statuses->Next(&status)) << statuses->Finish();
  EXPECT_EQ(status.status(), HealthCheckResponse::SERVING);

  statuses->Cancel();
  EXPECT_FALSE(statuses->Next(&status));
  EXPECT_THAT(statuses->Finish(), StatusIs(absl::StatusCode::kCancelled));
  // The server's handler has returned: the call is in the journal, ended.
  ASSERT_THAT(journal().WaitForCalls("Watch", 1, absl::Seconds(10)), IsOk());
}

TEST_F(HealthWatchTest, CallbackSeesEachChangeAndStoppingIsOk) {
  std::vector<HealthCheckResponse::ServingStatus> seen;
  absl::Status status = client().WatchHealth(
      HealthCheckRequest(), [&](const HealthCheckResponse& response) {
        seen.push_back(response.status());
        if (response.status() == HealthCheckResponse::SERVING) {
          server().SetHealth("", HealthCheckResponse::NOT_SERVING);
          return true;
        }
        return false;  // Stop at NOT_SERVING.
      });
  EXPECT_THAT(status, IsOk());
  EXPECT_THAT(seen, ElementsAre(HealthCheckResponse::SERVING,
                                HealthCheckResponse::NOT_SERVING));
  ASSERT_THAT(journal().WaitForCalls("Watch", 1, absl::Seconds(10)), IsOk());
}

TEST_F(HealthWatchTest, CancelFromAnotherThreadEndsABlockedWatch) {
  std::unique_ptr<StreamReader<HealthCheckResponse>> statuses =
      client().WatchHealth(HealthCheckRequest());
  HealthCheckResponse status;
  ASSERT_TRUE(statuses->Next(&status)) << statuses->Finish();
  ASSERT_THAT(WaitUntilWatching(), IsOk());
  // Blocked in Next (nothing changes) until the other thread cancels.
  std::thread canceller([&] { statuses->Cancel(); });
  EXPECT_FALSE(statuses->Next(&status));
  canceller.join();
  EXPECT_THAT(statuses->Finish(), StatusIs(absl::StatusCode::kCancelled));
  ASSERT_THAT(journal().WaitForCalls("Watch", 1, absl::Seconds(10)), IsOk());
}

TEST_F(HealthWatchTest, WatchesOneServiceFromUnknownToServing) {
  HealthCheckRequest request;
  request.set_service("descarteslabs.workflows.JobAPI");
  std::unique_ptr<StreamReader<HealthCheckResponse>> statuses =
      client().WatchHealth(request);
  HealthCheckResponse status;
  ASSERT_TRUE(statuses->Next(&status)) << statuses->Finish();
  EXPECT_EQ(status.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  // Another service's change is not sent.
  server().SetHealth("", HealthCheckResponse::NOT_SERVING);
  server().SetHealth(request.service(), HealthCheckResponse::SERVING);
  ASSERT_TRUE(statuses->Next(&status)) << statuses->Finish();
  EXPECT_EQ(status.status(), HealthCheckResponse::SERVING);
  statuses->Cancel();
  EXPECT_THAT(statuses->Finish(), StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(HealthWatchTest, SendsTheStreamDeadlineAndMapsItsExpiry) {
  EXPECT_CALL(backend(), Watch).WillOnce(ExpireDeadline());
  std::unique_ptr<StreamReader<HealthCheckResponse>> statuses =
      client().WatchHealth(HealthCheckRequest(),
                           {.retry = RetryPolicy::None()});
  HealthCheckResponse status;
  EXPECT_FALSE(statuses->Next(&status));
  EXPECT_THAT(statuses->Finish(),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_THAT(journal().Calls("Watch"), SizeIs(1));
  EXPECT_THAT(journal().Calls("Watch")[0],
              DeadlineNear(Client::kStreamTimeout, absl::Minutes(1)));
}

TEST_F(HealthWatchTest, AFailedOpeningIsRetried) {
  fake::Rule rule;
  rule.set_method("Watch");
  rule.set_fail_times(1);
  rule.mutable_behavior_on_fail()->mutable_fail()->set_code("UNAVAILABLE");
  ASSERT_THAT(server().script().AddRule(rule), IsOk());
  std::unique_ptr<StreamReader<HealthCheckResponse>> statuses =
      client().WatchHealth(HealthCheckRequest());
  HealthCheckResponse status;
  ASSERT_TRUE(statuses->Next(&status)) << statuses->Finish();
  EXPECT_EQ(status.status(), HealthCheckResponse::SERVING);
  EXPECT_THAT(statuses->failed_attempts(),
              ElementsAre(StatusIs(absl::StatusCode::kUnavailable)));
  statuses->Cancel();
  EXPECT_THAT(statuses->Finish(), StatusIs(absl::StatusCode::kCancelled));
}

}  // namespace
}  // namespace workflows
