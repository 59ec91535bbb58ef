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
//   // handler thread:  signal.WaitFor(absl::Milliseconds(1));
//   // Shutdown():      signal.Trigger();
class ShutdownSignal {
 public:
  void Trigger();
  bool triggered() const;
  // Blocks until Trigger() or until `timeout` of real time passes. Returns
  // triggered().
  bool WaitFor(absl::Duration timeout) const;

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

  // The sync API has no cancellation callback, so this waits on the server's
  // shutdown signal in short slices and re-checks IsCancelled() in between.
  bool WaitUntilDone(absl::Duration timeout) override;

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
  grpc::ServerContext* const context_;
  const absl::string_view method_;
  Clock* const clock_;
  const ShutdownSignal* const shutdown_;
  const absl::Time deadline_;
  std::multimap<std::string, std::string> metadata_;
  bool initial_metadata_sent_ = false;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_SERVER_CALL_CONTEXT_H_
