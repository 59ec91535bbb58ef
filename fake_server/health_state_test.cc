#include "fake_server/health_state.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace fake {
namespace {

using ::grpc::health::v1::HealthCheckResponse;
using ::testing::Optional;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr char kJobApi[] = "descarteslabs.workflows.JobAPI";

TEST(HealthStateTest, WholeServerStartsServingOthersUnknown) {
  HealthState health;
  EXPECT_THAT(health.GetStatus(""), Optional(HealthCheckResponse::SERVING));
  EXPECT_EQ(health.GetStatus(kJobApi), std::nullopt);
}

TEST(HealthStateTest, SetAndClearPerService) {
  HealthState health;
  health.SetStatus(kJobApi, HealthCheckResponse::NOT_SERVING);
  health.SetStatus("", HealthCheckResponse::UNKNOWN);
  EXPECT_THAT(health.GetStatus(kJobApi),
              Optional(HealthCheckResponse::NOT_SERVING));
  EXPECT_THAT(health.GetStatus(""), Optional(HealthCheckResponse::UNKNOWN));
  EXPECT_THAT(
      health.GetAll(),
      UnorderedElementsAre(Pair("", HealthCheckResponse::UNKNOWN),
                           Pair(kJobApi, HealthCheckResponse::NOT_SERVING)));
  health.ClearStatus(kJobApi);
  EXPECT_EQ(health.GetStatus(kJobApi), std::nullopt);
  EXPECT_THAT(health.GetAll(),
              UnorderedElementsAre(Pair("", HealthCheckResponse::UNKNOWN)));
}

TEST(HealthStateTest, VersionGrowsOnlyOnRealChanges) {
  HealthState health;
  const int64_t v0 = health.Observe(kJobApi).version;
  health.SetStatus(kJobApi, HealthCheckResponse::SERVING);
  const int64_t v1 = health.Observe(kJobApi).version;
  EXPECT_GT(v1, v0);
  health.SetStatus(kJobApi, HealthCheckResponse::SERVING);
  EXPECT_EQ(health.Observe(kJobApi).version, v1);
  health.ClearStatus(kJobApi);
  EXPECT_GT(health.Observe(kJobApi).version, v1);
}

TEST(HealthStateTest, WaitForChangeTimesOutWithUnchangedState) {
  HealthState health;
  const HealthState::Observation seen = health.Observe("");
  const HealthState::Observation after =
      health.WaitForChange("", seen.version, absl::Milliseconds(5));
  EXPECT_EQ(after.version, seen.version);
  EXPECT_THAT(after.status, Optional(HealthCheckResponse::SERVING));
}

TEST(HealthStateTest, WaitForChangeWakesOnSetFromAnotherThread) {
  HealthState health;
  const HealthState::Observation seen = health.Observe(kJobApi);
  absl::Notification waiting;
  HealthState::Observation after;
  std::thread waiter([&] {
    waiting.Notify();
    after = health.WaitForChange(kJobApi, seen.version, absl::Seconds(30));
  });
  waiting.WaitForNotification();
  const absl::Time start = absl::Now();
  health.SetStatus(kJobApi, HealthCheckResponse::NOT_SERVING);
  waiter.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_THAT(after.status, Optional(HealthCheckResponse::NOT_SERVING));
  EXPECT_GT(after.version, seen.version);
}

TEST(HealthStateTest, ShutdownWakesWaitersAndStaysShutDown) {
  HealthState health;
  const HealthState::Observation seen = health.Observe("");
  absl::Notification waiting;
  std::thread waiter([&] {
    waiting.Notify();
    health.WaitForChange("", seen.version, absl::Seconds(30));
  });
  waiting.WaitForNotification();
  const absl::Time start = absl::Now();
  health.Shutdown();
  waiter.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_TRUE(health.is_shut_down());
  // Later waits return at once too.
  const absl::Time again = absl::Now();
  health.WaitForChange("", seen.version, absl::Seconds(30));
  EXPECT_LT(absl::Now() - again, absl::Seconds(10));
}

TEST(HealthStateTest, ResetForgetsServicesAndServesWholeServer) {
  HealthState health;
  health.SetStatus("", HealthCheckResponse::NOT_SERVING);
  health.SetStatus(kJobApi, HealthCheckResponse::SERVING);
  const int64_t job_version = health.Observe(kJobApi).version;
  health.Reset();
  EXPECT_THAT(health.GetStatus(""), Optional(HealthCheckResponse::SERVING));
  EXPECT_EQ(health.GetStatus(kJobApi), std::nullopt);
  EXPECT_GT(health.Observe(kJobApi).version, job_version);
}

}  // namespace
}  // namespace fake
}  // namespace workflows
