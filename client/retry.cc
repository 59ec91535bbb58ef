#include "client/retry.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "client/errors.h"

namespace workflows {
namespace {

using absl::StatusCode;

double ProcessWideUniform(double lo, double hi) {
  static absl::Mutex mu(absl::kConstInit);
  static absl::BitGen* gen = new absl::BitGen();
  absl::MutexLock lock(&mu);
  return absl::Uniform<double>(*gen, lo, hi);
}

}  // namespace

RetryPolicy RetryPolicy::Default() {
  RetryPolicy policy;
  policy.max_retries = 5;
  policy.retryable_codes = {StatusCode::kUnavailable, StatusCode::kInternal,
                            StatusCode::kResourceExhausted,
                            StatusCode::kUnknown,
                            StatusCode::kDeadlineExceeded};
  policy.retry_after_codes = {StatusCode::kPermissionDenied};
  return policy;
}

RetryPolicy RetryPolicy::CreateJob(std::optional<int> num_retries) {
  RetryPolicy policy;
  policy.max_retries = std::max(0, num_retries.value_or(3));
  policy.retryable_codes = {StatusCode::kUnavailable, StatusCode::kInternal,
                            StatusCode::kUnknown,
                            StatusCode::kDeadlineExceeded};
  if (num_retries.has_value() && *num_retries > 0) {
    policy.retryable_codes.insert(StatusCode::kResourceExhausted);
    policy.honor_pushback = true;
  }
  return policy;
}

RetryPolicy RetryPolicy::None() {
  RetryPolicy policy;
  policy.max_retries = 0;
  return policy;
}

RetryPolicy::JitterSource RetryPolicy::SeededJitter(uint64_t seed) {
  struct State {
    absl::Mutex mu;
    std::mt19937_64 engine;
  };
  auto state = std::make_shared<State>();
  state->engine.seed(seed);
  return [state](double lo, double hi) {
    absl::MutexLock lock(&state->mu);
    if (!(hi > lo)) return lo;
    std::uniform_real_distribution<double> dist(lo, hi);
    return dist(state->engine);
  };
}

double RetryPolicy::Jitter() const {
  if (!(jitter_max > jitter_min)) return jitter_min;
  if (jitter) return jitter(jitter_min, jitter_max);
  return ProcessWideUniform(jitter_min, jitter_max);
}

Backoff::Backoff(const RetryPolicy& policy) : policy_(policy) { Reset(); }

void Backoff::Reset() {
  next_seconds_ = absl::ToDoubleSeconds(policy_.initial_backoff);
}

absl::Duration Backoff::Next() {
  double delay = next_seconds_ + policy_.Jitter();
  delay = std::min(delay, absl::ToDoubleSeconds(policy_.max_backoff));
  delay = std::max(delay, 0.0);
  next_seconds_ = delay * policy_.multiplier;
  return absl::Seconds(delay);
}

Retrier::Retrier(const RetryPolicy& policy, std::shared_ptr<Clock> clock,
                 std::string method)
    : policy_(policy),
      clock_(clock ? std::move(clock) : Clock::Real()),
      method_(std::move(method)),
      backoff_(policy),
      retries_left_(std::max(0, policy.max_retries)) {}

std::optional<absl::Duration> Retrier::DelayFor(const absl::Status& status) {
  if (status.ok()) return std::nullopt;
  // The Python predicate: an explicit retry-after wins, without backoff.
  if (policy_.retry_after_codes.count(status.code()) > 0) {
    if (std::optional<absl::Duration> after =
            RetryAfter(status, clock_->Now())) {
      return std::min(*after, MaxServerDelay());
    }
  }
  if (policy_.retryable_codes.count(status.code()) == 0) return std::nullopt;
  if (policy_.honor_pushback &&
      status.code() == StatusCode::kResourceExhausted) {
    if (std::optional<absl::Duration> pushback = RetryPushback(status)) {
      return std::min(*pushback + absl::Seconds(policy_.Jitter()),
                      MaxServerDelay());
    }
  }
  return backoff_.Next();
}

absl::Duration Retrier::MaxServerDelay() const {
  // A negative cap would be a negative sleep: treat it as "retry at once".
  return std::max(policy_.max_server_delay, absl::ZeroDuration());
}

absl::Status Retrier::OnFailure(const absl::Status& status) {
  if (status.ok()) return status;
  std::optional<absl::Duration> delay = DelayFor(status);
  if (!delay.has_value()) return status;
  attempts_.push_back(status);
  if (retries_left_ <= 0) return RetryExhaustedError(method_, attempts_);
  // Sleeping into the deadline would only delay the same answer.
  if (*delay >= TimeLeft()) return OutOfTime();
  --retries_left_;
  clock_->SleepFor(*delay);
  return absl::OkStatus();
}

void Retrier::set_deadline(absl::Time deadline, absl::Duration budget) {
  deadline_ = deadline;
  budget_ = budget;
}

absl::Duration Retrier::TimeLeft() const {
  if (!deadline_.has_value()) return absl::InfiniteDuration();
  return *deadline_ - clock_->Now();
}

namespace {

// `status` with the attempts payload (and nothing else) of
// RetryExhaustedError(method, attempts), so RetryAttempts() reads them.
absl::Status WithAttempts(absl::Status status, absl::string_view method,
                          const std::vector<absl::Status>& attempts) {
  absl::Status exhausted = RetryExhaustedError(method, attempts);
  exhausted.ForEachPayload(
      [&](absl::string_view type_url, const absl::Cord& payload) {
        if (!status.GetPayload(type_url).has_value()) {
          status.SetPayload(type_url, payload);
        }
      });
  return status;
}

}  // namespace

absl::Status Retrier::OutOfTime() const {
  std::string last = "none";
  if (!attempts_.empty()) {
    last = absl::StrCat(absl::StatusCodeToString(attempts_.back().code()), ": ",
                        attempts_.back().message());
  }
  absl::Status out = absl::DeadlineExceededError(absl::StrFormat(
      "%s did not succeed within its %s budget (%d attempts); last error: %s",
      method_, absl::FormatDuration(budget_), attempts_.size(), last));
  return WithAttempts(std::move(out), method_, attempts_);
}

absl::Status Retrier::EndedEarly(const absl::Status& error) const {
  if (attempts_.empty() || error.ok()) return error;
  std::vector<absl::Status> all = attempts_;
  all.push_back(error);
  absl::Status out(error.code(),
                   absl::StrCat(error.message(), " (after ", attempts_.size(),
                                " failed attempts of ", method_, ")"));
  error.ForEachPayload(
      [&](absl::string_view type_url, const absl::Cord& payload) {
        out.SetPayload(type_url, payload);
      });
  return WithAttempts(std::move(out), method_, all);
}

}  // namespace workflows
