#include "fake_server/health_state.h"

#include <string>

namespace workflows {
namespace fake {

using ::grpc::health::v1::HealthCheckResponse;

HealthState::HealthState() {
  absl::MutexLock lock(&mu_);
  SetLocked("", HealthCheckResponse::SERVING);
}

void HealthState::SetLocked(const std::string& service,
                            std::optional<ServingStatus> status) {
  Entry& entry = entries_[service];
  if (entry.status == status) return;
  entry.status = status;
  ++entry.version;
  changed_.SignalAll();
}

void HealthState::SetStatus(absl::string_view service, ServingStatus status) {
  absl::MutexLock lock(&mu_);
  SetLocked(std::string(service), status);
}

void HealthState::ClearStatus(absl::string_view service) {
  absl::MutexLock lock(&mu_);
  if (entries_.find(service) == entries_.end()) return;
  SetLocked(std::string(service), std::nullopt);
}

std::optional<HealthState::ServingStatus> HealthState::GetStatus(
    absl::string_view service) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(service);
  if (it == entries_.end()) return std::nullopt;
  return it->second.status;
}

std::map<std::string, HealthState::ServingStatus> HealthState::GetAll() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, ServingStatus> all;
  for (const auto& [service, entry] : entries_) {
    if (entry.status.has_value()) all[service] = *entry.status;
  }
  return all;
}

void HealthState::Reset() {
  absl::MutexLock lock(&mu_);
  for (auto& [service, entry] : entries_) {
    SetLocked(service, std::nullopt);
  }
  SetLocked("", HealthCheckResponse::SERVING);
}

HealthState::Observation HealthState::Observe(absl::string_view service) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(service);
  if (it == entries_.end()) return Observation{};
  return Observation{it->second.status, it->second.version};
}

HealthState::Observation HealthState::WaitForChange(
    absl::string_view service, int64_t seen_version,
    absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  bool timed_out = false;
  while (true) {
    Observation current;
    auto it = entries_.find(service);
    if (it != entries_.end()) {
      current = Observation{it->second.status, it->second.version};
    }
    if (current.version != seen_version || shut_down_ || timed_out) {
      return current;
    }
    timed_out = changed_.WaitWithDeadline(&mu_, deadline);
  }
}

void HealthState::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  changed_.SignalAll();
}

bool HealthState::is_shut_down() const {
  absl::MutexLock lock(&mu_);
  return shut_down_;
}

}  // namespace fake
}  // namespace workflows
