#ifndef WORKFLOWS_FAKE_SERVER_HEALTH_STATE_H_
#define WORKFLOWS_FAKE_SERVER_HEALTH_STATE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.pb.h"

namespace workflows {
namespace fake {

// HealthState holds the grpc.health.v1 serving status of each service of a
// fake server, and lets Health/Watch calls wait for changes. The service ""
// stands for the whole server and starts SERVING; other services are unknown
// until set. Thread-safe; one instance per server, no globals.
//
//   HealthState health;
//   health.SetStatus("descarteslabs.workflows.JobAPI",
//                    HealthCheckResponse::NOT_SERVING);
//   HealthState::Observation seen = health.Observe("");
//   // Blocks until "" changes, 100 ms pass or Shutdown() is called.
//   seen = health.WaitForChange("", seen.version, absl::Milliseconds(100));
class HealthState {
 public:
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

  // What a watcher saw: the status (nullopt: the service is unknown) and a
  // version that grows with each change of this service.
  struct Observation {
    std::optional<ServingStatus> status;
    int64_t version = 0;
  };

  HealthState();
  HealthState(const HealthState&) = delete;
  HealthState& operator=(const HealthState&) = delete;

  // Sets the status of `service` ("" is the whole server).
  void SetStatus(absl::string_view service, ServingStatus status);
  // Makes `service` unknown again (Check answers NOT_FOUND).
  void ClearStatus(absl::string_view service);
  // nullopt if `service` is unknown.
  std::optional<ServingStatus> GetStatus(absl::string_view service) const;
  // Every known service and its status.
  std::map<std::string, ServingStatus> GetAll() const;

  // Back to the initial state: only "" known, SERVING. Watchers see the
  // changes.
  void Reset();

  Observation Observe(absl::string_view service) const;

  // Blocks until the version of `service` differs from `seen_version`,
  // `timeout` elapses or Shutdown() is called, then returns the current
  // observation. Changes and Shutdown() wake waiters at once; callers loop
  // on this with a timeout up to CallContext::NextDoneCheck(), checking
  // CallContext::IsDone() between waits.
  Observation WaitForChange(absl::string_view service, int64_t seen_version,
                            absl::Duration timeout) const;

  // Wakes every waiter now and from then on makes WaitForChange return at
  // once, so that watchers can end promptly at server shutdown.
  void Shutdown();
  bool is_shut_down() const;

 private:
  struct Entry {
    std::optional<ServingStatus> status;
    int64_t version = 0;
  };
  void SetLocked(const std::string& service,
                 std::optional<ServingStatus> status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;
  // Cleared services keep their entry (with no status) so that versions only
  // grow and a watcher never misses a clear-then-set.
  std::map<std::string, Entry, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_HEALTH_STATE_H_
