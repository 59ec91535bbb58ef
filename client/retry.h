#ifndef WORKFLOWS_CLIENT_RETRY_H_
#define WORKFLOWS_CLIENT_RETRY_H_

// Retry policies of the Workflows client, matching the Python client's
// `Retry` (truncated exponential backoff with compounding jitter) and its
// CreateJob variant.
//
//   RetryPolicy policy = RetryPolicy::Default();
//   policy.jitter = RetryPolicy::SeededJitter(42);  // reproducible delays
//   Retrier retrier(policy, clock, "GetJob");
//   absl::Status status;
//   while (!(status = Attempt()).ok()) {
//     status = retrier.OnFailure(status);  // sleeps on `clock`
//     if (!status.ok()) break;             // final error
//   }

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/clock.h"

namespace workflows {

// How a call is retried. A value type: copy it and change fields freely.
struct RetryPolicy {
  // Returns a uniform random number in [lo, hi).
  using JitterSource = std::function<double(double lo, double hi)>;

  // 5 retries on UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED, UNKNOWN and
  // DEADLINE_EXCEEDED, plus PERMISSION_DENIED with a `retry-after` trailer.
  static RetryPolicy Default();
  // CreateJob's policy: `num_retries` retries (3 when unset) on UNAVAILABLE,
  // INTERNAL, UNKNOWN and DEADLINE_EXCEEDED; RESOURCE_EXHAUSTED (429) only
  // when num_retries > 0, then honouring `grpc-retry-pushback-ms`.
  static RetryPolicy CreateJob(std::optional<int> num_retries);
  // No retry at all: the first error is returned as is.
  static RetryPolicy None();

  // A jitter source from a fixed seed, for reproducible tests. Thread-safe.
  static JitterSource SeededJitter(uint64_t seed);

  // Number of retries after the first attempt (attempts = 1 + max_retries).
  int max_retries = 5;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  double multiplier = 2.0;
  absl::Duration max_backoff = absl::Seconds(60);
  // Each backoff step adds U(jitter_min, jitter_max) seconds.
  double jitter_min = 0.0;
  double jitter_max = 1.0;
  // Codes retried with backoff.
  std::set<absl::StatusCode> retryable_codes;
  // Codes retried after exactly their `retry-after` trailer (when present and
  // parsable), e.g. PERMISSION_DENIED.
  std::set<absl::StatusCode> retry_after_codes;
  // When RESOURCE_EXHAUSTED is retried and carries `grpc-retry-pushback-ms`,
  // wait pushback + U(jitter) instead of the backoff.
  bool honor_pushback = false;
  // The longest wait a server can impose: a `retry-after` or a pushback
  // (jitter included) past it is cut to it, and the retry then runs. The
  // Python client waits whatever it is told, so one `retry-after: 99999999`
  // stalls it for three years; this cap is a deliberate divergence. 60 s is
  // the Python backoff's own cap (`maximum=60`): no server makes the client
  // wait longer than it would ever choose to itself. Must be >= 0;
  // absl::InfiniteDuration() restores the Python behaviour.
  absl::Duration max_server_delay = absl::Seconds(60);
  // Null means a process-wide absl::BitGen.
  JitterSource jitter;

  // A uniform draw from `jitter` (or the process-wide generator).
  double Jitter() const;
};

// The truncated exponential delays of §5 of the reference: d = initial; each
// step d += U(jitter); d = min(d, max); yield d; d *= multiplier. So the jitter
// compounds.
class Backoff {
 public:
  explicit Backoff(const RetryPolicy& policy);
  absl::Duration Next();
  // Starts over at the initial delay.
  void Reset();

 private:
  const RetryPolicy& policy_;
  double next_seconds_;
};

// Drives the retries of one call: feed it each failed attempt's status; it
// sleeps on the clock and says whether to try again. Not thread-safe.
class Retrier {
 public:
  // `policy` must outlive the Retrier.
  Retrier(const RetryPolicy& policy, std::shared_ptr<Clock> clock,
          std::string method);

  // Records the failed `status`. Returns OK after sleeping when another
  // attempt should run. Otherwise returns the error for the caller: `status`
  // itself when it is not retryable, a RetryExhaustedError carrying every
  // attempt when the retries ran out, or OutOfTime() when a deadline is set
  // and the delay would reach it (nothing is slept then: no attempt could
  // run after it).
  absl::Status OnFailure(const absl::Status& status);

  // The delay to sleep before retrying after `status` (a server-given one
  // capped at max_server_delay); nullopt when `status` is not retryable
  // under the policy. It draws the next backoff step (and
  // its jitter), exactly as OnFailure does, so call it once per failed
  // attempt; it does not record the attempt or count a retry.
  std::optional<absl::Duration> DelayFor(const absl::Status& status);

  // Bounds the whole call by `deadline` on the clock: `budget` is the total
  // it stands for, named in OutOfTime()'s message.
  void set_deadline(absl::Time deadline, absl::Duration budget);
  // What is left before the deadline; InfiniteDuration() without one.
  absl::Duration TimeLeft() const;
  // DEADLINE_EXCEEDED for a call whose deadline passed between attempts,
  // naming the budget and the last attempt's error, and carrying every
  // attempt (RetryAttempts()).
  absl::Status OutOfTime() const;
  // `error`, which ended the call before an attempt could run (e.g. the
  // token could not be had), carrying the attempts that failed before it
  // and then `error` itself. `error` as is when there were none.
  absl::Status EndedEarly(const absl::Status& error) const;

  const std::vector<absl::Status>& attempts() const { return attempts_; }

 private:
  absl::Duration MaxServerDelay() const;

  const RetryPolicy& policy_;
  std::shared_ptr<Clock> clock_;
  std::string method_;
  Backoff backoff_;
  int retries_left_;
  std::vector<absl::Status> attempts_;
  std::optional<absl::Time> deadline_;
  absl::Duration budget_ = absl::InfiniteDuration();
};

}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_RETRY_H_
