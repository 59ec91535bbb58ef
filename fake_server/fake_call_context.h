#ifndef WORKFLOWS_FAKE_SERVER_FAKE_CALL_CONTEXT_H_
#define WORKFLOWS_FAKE_SERVER_FAKE_CALL_CONTEXT_H_

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/call_context.h"

namespace workflows {
namespace fake {

// FakeCallContext is a CallContext for calling a Backend directly in unit
// tests, without a server: settable metadata and deadline, Cancel() to end
// the call, and a record of the response metadata. Thread-safe.
//
//   auto clock = std::make_shared<SimulatedClock>();
//   FakeCallContext call(clock);
//   call.AddRequestMetadata("x-on-behalf-of-user", "alice@example.com");
//   backend.GetJob(&call, request, &job);
//   call.Cancel();  // a WatchJob running on another thread now returns
class FakeCallContext : public CallContext {
 public:
  explicit FakeCallContext(
      std::shared_ptr<Clock> clock = std::make_shared<SimulatedClock>(),
      std::string method = "/fake.Test/Method")
      : clock_(std::move(clock)), method_(std::move(method)) {}

  // Not thread-safe with respect to a running call: set before the call.
  void AddRequestMetadata(const std::string& key, const std::string& value) {
    metadata_.emplace(key, value);
  }
  void set_deadline(absl::Time deadline) { deadline_ = deadline; }
  void set_peer(std::string peer) { peer_ = std::move(peer); }

  // Ends the call: IsDone() becomes true and WaitUntilDone returns.
  void Cancel() {
    if (!cancelled_.HasBeenNotified()) cancelled_.Notify();
  }

  std::multimap<std::string, std::string> initial_metadata() const {
    absl::MutexLock lock(&mu_);
    return initial_metadata_;
  }
  std::multimap<std::string, std::string> trailing_metadata() const {
    absl::MutexLock lock(&mu_);
    return trailing_metadata_;
  }

  // CallContext:
  absl::string_view method() const override { return method_; }
  const std::multimap<std::string, std::string>& request_metadata()
      const override {
    return metadata_;
  }
  absl::Time deadline() const override { return deadline_; }
  std::string peer() const override { return peer_; }
  bool IsDone() const override {
    return cancelled_.HasBeenNotified() || absl::Now() >= deadline_;
  }
  bool WaitUntilDone(absl::Duration timeout) override {
    const absl::Duration until_deadline = deadline_ - absl::Now();
    cancelled_.WaitForNotificationWithTimeout(
        std::max(absl::ZeroDuration(), std::min(timeout, until_deadline)));
    return IsDone();
  }
  void AddInitialMetadata(const std::string& key,
                          const std::string& value) override {
    absl::MutexLock lock(&mu_);
    initial_metadata_.emplace(key, value);
  }
  void AddTrailingMetadata(const std::string& key,
                           const std::string& value) override {
    absl::MutexLock lock(&mu_);
    trailing_metadata_.emplace(key, value);
  }
  Clock& clock() override { return *clock_; }
  // Ends the call like Cancel(), and remembers that the server did it.
  void ResetCall() override {
    reset_.store(true);
    Cancel();
  }

  // True once ResetCall() was called.
  bool was_reset() const { return reset_.load(); }

 private:
  const std::shared_ptr<Clock> clock_;
  const std::string method_;
  std::multimap<std::string, std::string> metadata_;
  absl::Time deadline_ = absl::InfiniteFuture();
  std::string peer_ = "ipv4:127.0.0.1:12345";
  absl::Notification cancelled_;
  std::atomic<bool> reset_{false};
  mutable absl::Mutex mu_;
  std::multimap<std::string, std::string> initial_metadata_
      ABSL_GUARDED_BY(mu_);
  std::multimap<std::string, std::string> trailing_metadata_
      ABSL_GUARDED_BY(mu_);
};

// FakeServerStream records what a Backend writes to a server stream and lets
// a test wait for messages written from another thread. Break() makes further
// writes fail, as when the client goes away. Thread-safe.
//
//   FakeServerStream<Job::State> stream;
//   std::thread watcher([&] { status = backend.WatchJob(&call, req, &stream);
//   }); ASSERT_TRUE(stream.WaitForCount(1, absl::Seconds(10)));
template <typename Message>
class FakeServerStream : public ServerStream<Message> {
 public:
  bool Write(const Message& message) override {
    absl::MutexLock lock(&mu_);
    if (broken_) return false;
    messages_.push_back(message);
    return true;
  }

  void Break() {
    absl::MutexLock lock(&mu_);
    broken_ = true;
  }

  // Waits until at least `count` messages were written; false on timeout.
  bool WaitForCount(size_t count, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto enough = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return messages_.size() >= count;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  std::vector<Message> messages() const {
    absl::MutexLock lock(&mu_);
    return messages_;
  }
  size_t size() const {
    absl::MutexLock lock(&mu_);
    return messages_.size();
  }

 private:
  mutable absl::Mutex mu_;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Message> messages_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_FAKE_CALL_CONTEXT_H_
