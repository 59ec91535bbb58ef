#ifndef WORKFLOWS_FAKE_SERVER_CALL_CONTEXT_H_
#define WORKFLOWS_FAKE_SERVER_CALL_CONTEXT_H_

#include <algorithm>
#include <map>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/clock.h"

namespace workflows {
namespace fake {

// How often a wait that nothing can wake when a call ends looks at the call
// again: the server's handlers ask gRPC whether the client cancelled (its
// sync API has no cancellation callback), and backends blocked on their own
// state changes re-check CallContext::IsDone(). Deadlines, state changes and
// server shutdown wake waiters at once; this only bounds how late a client's
// cancel is noticed, at a cost of one cheap check per waiting call per
// interval (200 hung calls: about 2,000 checks a second, 0.07 CPU-seconds
// per second in the standalone binary).
inline constexpr absl::Duration kDoneCheckInterval = absl::Milliseconds(100);

// CallContext is what a Backend (in-memory, gMock or your own) sees of one
// RPC: who called, with which metadata and deadline, and how to answer with
// metadata or wait for the call to end. The server's service adapters
// implement it on top of grpc::ServerContext; tests may implement it directly
// to call a Backend without a server.
//
//   grpc::Status GetJob(CallContext* call, const GetJobRequest& request,
//                       Job* response) override {
//     call->AddTrailingMetadata("retry-after", "1");
//     ...
//   }
class CallContext {
 public:
  virtual ~CallContext() = default;

  // Full method path, e.g. "/descarteslabs.workflows.JobAPI/GetJob".
  virtual absl::string_view method() const = 0;

  // Request metadata as sent by the client (lower-case keys).
  virtual const std::multimap<std::string, std::string>& request_metadata()
      const = 0;

  // The client's deadline in real time; absl::InfiniteFuture() if none.
  virtual absl::Time deadline() const = 0;

  // The client's address as gRPC reports it, e.g. "ipv4:127.0.0.1:5000".
  virtual std::string peer() const = 0;

  // True once the call can no longer be answered: the client cancelled, its
  // deadline passed, or the server is shutting down.
  virtual bool IsDone() const = 0;

  // Blocks until IsDone() or until `timeout` of real time elapses, whichever
  // comes first. Returns IsDone(). Waits without polling: it wakes at the
  // deadline, at server shutdown and (to notice a client's cancel) every
  // kDoneCheckInterval at most.
  virtual bool WaitUntilDone(absl::Duration timeout) = 0;

  // For a call that is done: true if it ended because the client's deadline
  // passed (answer DEADLINE_EXCEEDED), false if the client cancelled or the
  // server is shutting down (CANCELLED). The default compares the time with
  // deadline(). The server's context also counts a client's cancel noticed
  // within a tolerance of the deadline, since the client's own deadline
  // falls a little before the one the server sees (see ServerCallContext).
  virtual bool DeadlineExceeded() const { return absl::Now() >= deadline(); }

  // The latest real time at which a backend blocked on its own state (e.g.
  // WatchJob waiting for the job to change) must check IsDone() again if
  // nothing wakes it sooner. The default, the deadline or kDoneCheckInterval
  // from now if sooner, suits contexts whose end nothing signals.
  //
  //   while (!call->IsDone()) {
  //     changed.WaitWithDeadline(&mu, call->NextDoneCheck());
  //   }
  virtual absl::Time NextDoneCheck() const {
    return std::min(deadline(), absl::Now() + kDoneCheckInterval);
  }

  // Adds response metadata. Initial metadata must be added before the first
  // response message is written.
  virtual void AddInitialMetadata(const std::string& key,
                                  const std::string& value) = 0;
  virtual void AddTrailingMetadata(const std::string& key,
                                   const std::string& value) = 0;

  // The server's clock (simulated in tests).
  virtual Clock& clock() = 0;

  // Aborts the call from the server side, as an RST_STREAM would: the client
  // sees CANCELLED, and nothing sent afterwards (messages, metadata, the
  // returned status) reaches it. IsDone() is true afterwards. Scripted
  // `reset` behaviours use it. Not pure, so that contexts without a
  // transport (and existing implementations) need not care; the default
  // does nothing and the caller's CANCELLED status is what the client sees.
  virtual void ResetCall() {}
};

// ServerStream is the sending half of a server-streaming RPC.
template <typename Message>
class ServerStream {
 public:
  virtual ~ServerStream() = default;

  // Sends one message. Returns false when the stream is broken (client gone,
  // deadline passed, server shutting down); the backend should then return.
  virtual bool Write(const Message& message) = 0;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_CALL_CONTEXT_H_
