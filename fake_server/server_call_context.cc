#include "fake_server/server_call_context.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/warning_sink.h"

namespace workflows {
namespace fake {
namespace {

absl::Time DeadlineOf(const grpc::ServerContext& context) {
  const std::chrono::system_clock::time_point deadline = context.deadline();
  // gRPC reports "no deadline" as a time centuries away (time_point::max()
  // or gpr_inf_future); anything past a century counts as none.
  if (deadline >=
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365 * 100)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

}  // namespace

void ShutdownSignal::Trigger() {
  absl::MutexLock lock(&mu_);
  triggered_.store(true, std::memory_order_release);
  cv_.SignalAll();
}

bool ShutdownSignal::triggered() const {
  return triggered_.load(std::memory_order_acquire);
}

bool ShutdownSignal::WaitFor(absl::Duration timeout) const {
  return WaitUntil(absl::Now() + timeout);
}

bool ShutdownSignal::WaitUntil(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  while (!triggered()) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) break;  // Timed out.
  }
  return triggered();
}

ServerCallContext::ServerCallContext(grpc::ServerContext* context,
                                     absl::string_view method, Clock* clock,
                                     const ShutdownSignal* shutdown)
    : context_(context),
      method_(method),
      clock_(clock),
      shutdown_(shutdown),
      deadline_(DeadlineOf(*context)),
      deadline_exceeded_from_(
          deadline_ == absl::InfiniteFuture()
              ? absl::InfiniteFuture()
              : deadline_ - DeadlineTolerance(deadline_ - absl::Now())) {
  for (const auto& [key, value] : context->client_metadata()) {
    metadata_.emplace_hint(metadata_.end(), std::string(key.data(), key.size()),
                           std::string(value.data(), value.size()));
  }
}

absl::Duration ServerCallContext::DeadlineTolerance(absl::Duration timeout) {
  return kDeadlineTolerance + std::max(absl::ZeroDuration(), timeout / 100);
}

bool ServerCallContext::Cancelled() const {
  if (cancel_seen_.load(std::memory_order_acquire) != CancelSeen::kNo) {
    return true;
  }
  if (!context_->IsCancelled()) return false;
  const CancelSeen seen = absl::Now() >= deadline_exceeded_from_
                              ? CancelSeen::kWithinTolerance
                              : CancelSeen::kBeforeTolerance;
  // The first observation wins.
  CancelSeen expected = CancelSeen::kNo;
  cancel_seen_.compare_exchange_strong(expected, seen,
                                       std::memory_order_acq_rel);
  return true;
}

bool ServerCallContext::IsDone() const {
  return shutting_down() || deadline_passed() || Cancelled();
}

bool ServerCallContext::DeadlineExceeded() const {
  if (deadline_passed()) return true;
  Cancelled();
  return cancel_seen_.load(std::memory_order_acquire) ==
         CancelSeen::kWithinTolerance;
}

absl::Time ServerCallContext::NextDoneCheck() const {
  const absl::Time now = absl::Now();
  absl::Time next = std::min(deadline_, now + kDoneCheckInterval);
  // A check right at the start of the tolerance tells a client's own cancel
  // from its deadline as closely as the tolerance allows.
  if (now < deadline_exceeded_from_) {
    next = std::min(next, deadline_exceeded_from_);
  }
  return next;
}

bool ServerCallContext::WaitUntilDone(absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (!IsDone()) {
    if (absl::Now() >= end) return false;
    shutdown_->WaitUntil(std::min(end, NextDoneCheck()));
    wakeups_.fetch_add(1, std::memory_order_relaxed);
  }
  return true;
}

void ServerCallContext::AddInitialMetadata(const std::string& key,
                                           const std::string& value) {
  if (initial_metadata_sent_) {
    EmitWarning(absl::StrFormat(
        "fake server: %s: initial metadata %s added after the first message "
        "was sent; ignored",
        method_, key));
    return;
  }
  context_->AddInitialMetadata(key, value);
}

void ServerCallContext::AddTrailingMetadata(const std::string& key,
                                            const std::string& value) {
  context_->AddTrailingMetadata(key, value);
}

}  // namespace fake
}  // namespace workflows
