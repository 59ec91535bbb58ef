#include "testing/auth_fakes.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace workflows {
namespace testing {

ExpiringTokenAuth::ExpiringTokenAuth(std::shared_ptr<Clock> clock,
                                     std::string token, absl::Duration lifetime)
    : clock_(std::move(clock)),
      token_(std::move(token)),
      expiry_(clock_->Now() + lifetime) {}

absl::StatusOr<std::string> ExpiringTokenAuth::Token() {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  if (now >= expiry_) {
    return absl::UnauthenticatedError(absl::StrCat(
        "token expired at ", absl::FormatTime(expiry_, absl::UTCTimeZone()),
        " and could not be refreshed"));
  }
  return token_;
}

void ExpiringTokenAuth::Refresh(std::string token, absl::Duration lifetime) {
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  token_ = std::move(token);
  expiry_ = now + lifetime;
}

absl::Time ExpiringTokenAuth::expiry() const {
  absl::MutexLock lock(&mu_);
  return expiry_;
}

FailingAuth::FailingAuth(absl::Status status) : status_(std::move(status)) {}

absl::StatusOr<std::string> FailingAuth::Token() { return status_; }

CountingAuth::CountingAuth(std::shared_ptr<Auth> inner)
    : inner_(std::move(inner)) {}

absl::StatusOr<std::string> CountingAuth::Token() {
  ++count_;
  return inner_->Token();
}

}  // namespace testing
}  // namespace workflows
