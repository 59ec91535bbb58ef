#include "fake_server/server_call_context.h"

#include <chrono>

#include "absl/strings/str_format.h"

namespace workflows {
namespace fake {
namespace {

// How often a waiting handler re-checks ServerContext::IsCancelled(): short
// enough that a client's cancel ends a hung call promptly, long enough to
// cost nothing noticeable.
constexpr absl::Duration kCancelPollInterval = absl::Milliseconds(1);

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
  absl::MutexLock lock(&mu_);
  if (!triggered()) cv_.WaitWithTimeout(&mu_, timeout);
  return triggered();
}

ServerCallContext::ServerCallContext(grpc::ServerContext* context,
                                     absl::string_view method, Clock* clock,
                                     const ShutdownSignal* shutdown)
    : context_(context),
      method_(method),
      clock_(clock),
      shutdown_(shutdown),
      deadline_(DeadlineOf(*context)) {
  for (const auto& [key, value] : context->client_metadata()) {
    metadata_.emplace_hint(metadata_.end(), std::string(key.data(), key.size()),
                           std::string(value.data(), value.size()));
  }
}

bool ServerCallContext::IsDone() const {
  return context_->IsCancelled() || deadline_passed() || shutting_down();
}

bool ServerCallContext::WaitUntilDone(absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (!IsDone()) {
    const absl::Time now = absl::Now();
    if (now >= end) return false;
    shutdown_->WaitFor(
        std::min({kCancelPollInterval, end - now,
                  std::max(deadline_ - now, absl::ZeroDuration())}));
  }
  return true;
}

void ServerCallContext::AddInitialMetadata(const std::string& key,
                                           const std::string& value) {
  if (initial_metadata_sent_) {
    absl::FPrintF(stderr,
                  "fake server: %s: initial metadata %s added after the first "
                  "message was sent; ignored\n",
                  method_, key);
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
