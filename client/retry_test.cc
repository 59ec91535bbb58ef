#include "client/retry.h"

#include "absl/time/time.h"
#include "client/clock.h"
#include "client/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

RetryPolicy::JitterSource Fixed(double value) {
  return [value](double, double) { return value; };
}

absl::Status WithTrailer(absl::Status status, std::string key,
                         std::string value) {
  SetTrailingMetadata(status, {{std::move(key), std::move(value)}});
  return status;
}

TEST(BackoffTest, GrowsWithCompoundingJitterAndCaps) {
  RetryPolicy policy = RetryPolicy::Default();
  policy.jitter = Fixed(0.5);
  Backoff backoff(policy);
  std::vector<absl::Duration> delays;
  for (int i = 0; i < 9; ++i) delays.push_back(backoff.Next());
  // d0 = 0.1 + 0.5; d(n) = min(2 d(n-1) + 0.5, 60).
  EXPECT_THAT(
      delays,
      ElementsAre(absl::Seconds(0.6), absl::Seconds(1.7), absl::Seconds(3.9),
                  absl::Seconds(8.3), absl::Seconds(17.1), absl::Seconds(34.7),
                  absl::Seconds(60), absl::Seconds(60), absl::Seconds(60)));
}

TEST(BackoffTest, SeededJitterIsReproducible) {
  RetryPolicy a = RetryPolicy::Default();
  a.jitter = RetryPolicy::SeededJitter(7);
  RetryPolicy b = RetryPolicy::Default();
  b.jitter = RetryPolicy::SeededJitter(7);
  Backoff x(a), y(b);
  for (int i = 0; i < 5; ++i) {
    absl::Duration d = x.Next();
    EXPECT_EQ(d, y.Next());
    EXPECT_GE(d, absl::Milliseconds(100));
  }
}

TEST(RetrierTest, DefaultRetriesFiveTimesThenCarriesAllAttempts) {
  auto clock = std::make_shared<SimulatedClock>();
  RetryPolicy policy = RetryPolicy::Default();
  policy.jitter = Fixed(0.0);
  Retrier retrier(policy, clock, "GetJob");
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(retrier.OnFailure(absl::UnavailableError("down")).ok());
  }
  absl::Status final = retrier.OnFailure(absl::UnavailableError("down"));
  EXPECT_TRUE(IsRetryExhausted(final));
  EXPECT_EQ(final.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(RetryAttempts(final).size(), 6);
  EXPECT_THAT(
      clock->sleeps(),
      ElementsAre(absl::Seconds(0.1), absl::Seconds(0.2), absl::Seconds(0.4),
                  absl::Seconds(0.8), absl::Seconds(1.6)));
}

TEST(RetrierTest, RetryableCodes) {
  RetryPolicy policy = RetryPolicy::Default();
  for (absl::StatusCode code :
       {absl::StatusCode::kUnavailable, absl::StatusCode::kInternal,
        absl::StatusCode::kResourceExhausted, absl::StatusCode::kUnknown,
        absl::StatusCode::kDeadlineExceeded}) {
    Retrier retrier(policy, std::make_shared<SimulatedClock>(), "m");
    EXPECT_TRUE(retrier.OnFailure(absl::Status(code, "x")).ok()) << code;
  }
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
        absl::StatusCode::kPermissionDenied, absl::StatusCode::kUnauthenticated,
        absl::StatusCode::kCancelled, absl::StatusCode::kFailedPrecondition}) {
    auto clock = std::make_shared<SimulatedClock>();
    Retrier retrier(policy, clock, "m");
    absl::Status status(code, "x");
    EXPECT_EQ(retrier.OnFailure(status), status) << code;
    EXPECT_THAT(clock->sleeps(), IsEmpty());
  }
}

TEST(RetrierTest, PermissionDeniedWithRetryAfterSecondsAndDate) {
  auto clock = std::make_shared<SimulatedClock>();
  RetryPolicy policy = RetryPolicy::Default();
  policy.max_server_delay = absl::InfiniteDuration();  // As in Python.
  Retrier retrier(policy, clock, "GetJob");
  EXPECT_TRUE(retrier
                  .OnFailure(WithTrailer(absl::PermissionDeniedError("wait"),
                                         "retry-after", "120"))
                  .ok());
  // The simulated clock starts at 2026-01-01T00:00:00Z and is now 120 s on.
  EXPECT_TRUE(retrier
                  .OnFailure(WithTrailer(absl::PermissionDeniedError("wait"),
                                         "retry-after",
                                         "Thu, 01 Jan 2026 01:02:00 GMT"))
                  .ok());
  absl::Status bogus =
      WithTrailer(absl::PermissionDeniedError("no"), "retry-after", "whenever");
  EXPECT_EQ(retrier.OnFailure(bogus), bogus);
  EXPECT_THAT(clock->sleeps(), ElementsAre(absl::Seconds(120), absl::Hours(1)));
}

TEST(RetrierTest, ServerDelaysAreCappedAtMaxServerDelay) {
  EXPECT_EQ(RetryPolicy::Default().max_server_delay, absl::Seconds(60));
  EXPECT_EQ(RetryPolicy::CreateJob(1).max_server_delay, absl::Seconds(60));
  auto clock = std::make_shared<SimulatedClock>();
  RetryPolicy policy = RetryPolicy::CreateJob(3);
  policy.retry_after_codes = {absl::StatusCode::kPermissionDenied};
  policy.jitter = Fixed(0.5);
  policy.max_server_delay = absl::Seconds(10);
  Retrier retrier(policy, clock, "CreateJob");
  // About three years, a date past the cap, and a pushback (plus its
  // jitter) past it: each is cut to the cap.
  EXPECT_TRUE(retrier
                  .OnFailure(WithTrailer(absl::PermissionDeniedError("wait"),
                                         "retry-after", "99999999"))
                  .ok());
  EXPECT_TRUE(retrier
                  .OnFailure(WithTrailer(absl::PermissionDeniedError("wait"),
                                         "retry-after",
                                         "Fri, 01 Jan 2100 00:00:00 GMT"))
                  .ok());
  EXPECT_TRUE(retrier
                  .OnFailure(WithTrailer(absl::ResourceExhaustedError("429"),
                                         "grpc-retry-pushback-ms", "9990"))
                  .ok());
  // Below the cap, the server's delay is kept exactly.
  EXPECT_EQ(retrier.DelayFor(WithTrailer(absl::PermissionDeniedError("wait"),
                                         "retry-after", "9")),
            absl::Seconds(9));
  EXPECT_THAT(clock->sleeps(), ElementsAre(absl::Seconds(10), absl::Seconds(10),
                                           absl::Seconds(10)));
}

TEST(RetrierTest, ANegativeMaxServerDelayRetriesAtOnce) {
  auto clock = std::make_shared<SimulatedClock>();
  RetryPolicy policy = RetryPolicy::Default();
  policy.max_server_delay = absl::Seconds(-5);
  Retrier retrier(policy, clock, "GetJob");
  EXPECT_EQ(retrier.DelayFor(WithTrailer(absl::PermissionDeniedError("wait"),
                                         "retry-after", "30")),
            absl::ZeroDuration());
}

TEST(RetrierTest, CreateJobDoesNotRetry429ByDefault) {
  auto clock = std::make_shared<SimulatedClock>();
  RetryPolicy policy = RetryPolicy::CreateJob(std::nullopt);
  EXPECT_EQ(policy.max_retries, 3);
  Retrier retrier(policy, clock, "CreateJob");
  absl::Status busy = absl::ResourceExhaustedError("429");
  EXPECT_EQ(retrier.OnFailure(busy), busy);
  EXPECT_THAT(clock->sleeps(), IsEmpty());
}

TEST(RetrierTest, CreateJobRetries429WithPushback) {
  auto clock = std::make_shared<SimulatedClock>();
  RetryPolicy policy = RetryPolicy::CreateJob(1);
  policy.jitter = Fixed(0.25);
  Retrier retrier(policy, clock, "CreateJob");
  absl::Status busy = WithTrailer(absl::ResourceExhaustedError("429"),
                                  "grpc-retry-pushback-ms", "2000");
  EXPECT_TRUE(retrier.OnFailure(busy).ok());
  absl::Status final = retrier.OnFailure(busy);
  EXPECT_TRUE(IsRetryExhausted(final));
  EXPECT_EQ(RetryAttempts(final).size(), 2);
  EXPECT_THAT(clock->sleeps(), ElementsAre(absl::Seconds(2.25)));
}

TEST(RetrierTest, NoneReturnsFirstErrorUnwrapped) {
  auto clock = std::make_shared<SimulatedClock>();
  RetryPolicy policy = RetryPolicy::None();
  Retrier retrier(policy, clock, "GetJob");
  absl::Status down = absl::UnavailableError("down");
  EXPECT_EQ(retrier.OnFailure(down), down);
  EXPECT_THAT(clock->sleeps(), IsEmpty());
}

}  // namespace
}  // namespace workflows
