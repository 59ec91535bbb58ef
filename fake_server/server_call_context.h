#ifndef WORKFLOWS_FAKE_SERVER_SERVER_CALL_CONTEXT_H_
#define WORKFLOWS_FAKE_SERVER_SERVER_CALL_CONTEXT_H_

#include <grpcpp/server_context.h>

#include <atomic>
#include <map>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/call_context.h"

namespace workflows {
namespace fake {

// ShutdownSignal is one server's "shutting down" flag. Hung calls and
// blocked streams wait on it so that FakeWorkflowsServer::Shutdown wakes them
// at once, before gRPC's own shutdown starts waiting for handlers to return.
// Thread-safe; one per server, no globals.
//
//   ShutdownSignal signal;
//   // handler thread:  signal.WaitUntil(call_deadline);
//   // Shutdown():      signal.Trigger();
class ShutdownSignal {
 public:
  void Trigger();
  bool triggered() const;
  // Blocks until Trigger() or until `timeout` of real time passes. Returns
  // triggered().
  bool WaitFor(absl::Duration timeout) const;
  // Blocks until Trigger() or until `deadline` (real time). Returns
  // triggered(). Spurious wake-ups are absorbed here.
  bool WaitUntil(absl::Time deadline) const;

 private:
  // Read on every stream write and IsDone(), so lock-free; the mutex and
  // condition variable only serve waiters.
  std::atomic<bool> triggered_{false};
  mutable absl::Mutex mu_;
  mutable absl::CondVar cv_;
};

// ServerCallContext is the CallContext of one RPC served by the fake server,
// on top of the sync API's grpc::ServerContext. Created and used only by the
// thread handling the call.
//
//   ServerCallContext call(context, "/descarteslabs.workflows.JobAPI/GetJob",
//                          clock, &shutdown);
//   backend->GetJob(&call, request, &response);
class ServerCallContext : public CallContext {
 public:
  // `method`, `clock` and `shutdown` must outlive the call.
  ServerCallContext(grpc::ServerContext* context, absl::string_view method,
                    Clock* clock, const ShutdownSignal* shutdown);

  absl::string_view method() const override { return method_; }
  const std::multimap<std::string, std::string>& request_metadata()
      const override {
    return metadata_;
  }
  absl::Time deadline() const override { return deadline_; }
  std::string peer() const override { return context_->peer(); }

  // Cancelled by the client, past its deadline, or the server is shutting
  // down.
  bool IsDone() const override;

  // Waits on the server's shutdown signal until the deadline, the end of
  // `timeout` or shutdown. The sync API has no cancellation callback (only
  // IsCancelled(), which asks), so the wait also wakes every
  // kDoneCheckInterval, and once at the start of the deadline tolerance, to
  // ask: a hung call costs about ten cheap checks a second, not a busy loop.
  bool WaitUntilDone(absl::Duration timeout) override;

  // True once the deadline the server sees has passed, or if the client's
  // cancel was first noticed no earlier than DeadlineTolerance() before it.
  // The server's deadline is the client's `grpc-timeout` (rounded up, to 1%
  // at most) counted from when the server read the request, so it falls
  // after the client's own: a client whose deadline passes cancels the call
  // (RST_STREAM) before the server's deadline, and without the tolerance the
  // journal would say CANCELLED where the client saw DEADLINE_EXCEEDED. A
  // client that cancels by itself within the tolerance of its deadline is
  // counted as DEADLINE_EXCEEDED too (the server cannot tell them apart).
  bool DeadlineExceeded() const override;

  // The deadline, the start of its tolerance, or kDoneCheckInterval from now,
  // whichever comes first.
  absl::Time NextDoneCheck() const override;

  // The tolerance for a call whose timeout (as the server received it) is
  // `timeout`: kDeadlineTolerance plus 1% of the timeout, gRPC's worst
  // rounding of `grpc-timeout`.
  static absl::Duration DeadlineTolerance(absl::Duration timeout);
  // Covers the time between the client computing `grpc-timeout` and the
  // server reading it (microseconds on loopback, tens of milliseconds on a
  // loaded CI machine under a sanitizer) and the millisecond rounding.
  static constexpr absl::Duration kDeadlineTolerance = absl::Milliseconds(200);

  // How many times WaitUntilDone woke to look at the call (timeouts and
  // shutdown): what waiting cost. Tests check that a hung call does not poll.
  int64_t wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

  // Ignored (with a note on stderr) once initial metadata has gone out with
  // the first message, where gRPC would abort the process instead.
  void AddInitialMetadata(const std::string& key,
                          const std::string& value) override;
  void AddTrailingMetadata(const std::string& key,
                           const std::string& value) override;

  Clock& clock() override { return *clock_; }

  // grpc::ServerContext::TryCancel(): gRPC sends RST_STREAM (CANCELLED).
  void ResetCall() override { context_->TryCancel(); }

  // Called by the stream writer before the first message goes out.
  void MarkInitialMetadataSent() { initial_metadata_sent_ = true; }

  bool shutting_down() const { return shutdown_->triggered(); }
  bool deadline_passed() const { return absl::Now() >= deadline_; }
  bool has_deadline() const { return deadline_ != absl::InfiniteFuture(); }

  grpc::ServerContext* server_context() { return context_; }

  // Hands the request metadata over (to the journal) once nothing else will
  // read it; request_metadata() is empty afterwards.
  std::multimap<std::string, std::string> ReleaseRequestMetadata() {
    return std::move(metadata_);
  }

 private:
  // Asks gRPC whether the client cancelled, and remembers when that was
  // first seen (relative to deadline_exceeded_from_).
  bool Cancelled() const;

  // What Cancelled() has seen.
  enum class CancelSeen : int { kNo, kBeforeTolerance, kWithinTolerance };

  grpc::ServerContext* const context_;
  const absl::string_view method_;
  Clock* const clock_;
  const ShutdownSignal* const shutdown_;
  const absl::Time deadline_;
  // deadline_ minus DeadlineTolerance(); InfiniteFuture without a deadline.
  const absl::Time deadline_exceeded_from_;
  // Atomic, so that a backend may call IsDone() from another thread.
  mutable std::atomic<CancelSeen> cancel_seen_{CancelSeen::kNo};
  std::atomic<int64_t> wakeups_{0};
  std::multimap<std::string, std::string> metadata_;
  bool initial_metadata_sent_ = false;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_SERVER_CALL_CONTEXT_H_
