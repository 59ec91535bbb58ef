#ifndef WORKFLOWS_TESTING_AUTH_FAKES_H_
#define WORKFLOWS_TESTING_AUTH_FAKES_H_

// Auth implementations for tests of token handling. Use them as
// ClientOptions::auth (or WorkflowsTest's client_auth):
//
//   auto clock = std::make_shared<SimulatedClock>();
//   auto auth = std::make_shared<ExpiringTokenAuth>(clock, "t0ken",
//                                                   absl::Minutes(5));
//   clock->AdvanceBy(absl::Minutes(6));
//   EXPECT_THAT(auth->Token(), StatusIs(absl::StatusCode::kUnauthenticated));
//
//   auto counting = std::make_shared<CountingAuth>(
//       std::make_shared<StaticTokenAuth>("t0ken"));
//   ... make three calls ...
//   EXPECT_EQ(counting->count(), 3);   // asked once per call

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/auth.h"
#include "client/clock.h"

namespace workflows {
namespace testing {

using ::workflows::StaticTokenAuth;

// A token valid for `lifetime` from construction on `clock` (usually a
// SimulatedClock). After that Token() fails UNAUTHENTICATED, like an Auth
// whose refresh failed after expiry; Refresh() issues a new token.
class ExpiringTokenAuth : public Auth {
 public:
  ExpiringTokenAuth(std::shared_ptr<Clock> clock, std::string token,
                    absl::Duration lifetime);

  absl::StatusOr<std::string> Token() override;

  // Replaces the token with `token`, valid for `lifetime` from now.
  void Refresh(std::string token, absl::Duration lifetime);
  absl::Time expiry() const;

 private:
  const std::shared_ptr<Clock> clock_;
  mutable absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  absl::Time expiry_ ABSL_GUARDED_BY(mu_);
};

// Always fails with `status`, e.g. a credentials file that cannot be read.
class FailingAuth : public Auth {
 public:
  explicit FailingAuth(absl::Status status);
  absl::StatusOr<std::string> Token() override;

 private:
  const absl::Status status_;
};

// Forwards to `inner` and counts how often a token was asked for.
class CountingAuth : public Auth {
 public:
  explicit CountingAuth(std::shared_ptr<Auth> inner);
  absl::StatusOr<std::string> Token() override;
  int count() const { return count_.load(); }

 private:
  const std::shared_ptr<Auth> inner_;
  std::atomic<int> count_{0};
};

}  // namespace testing
}  // namespace workflows

#endif  // WORKFLOWS_TESTING_AUTH_FAKES_H_
