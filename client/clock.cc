#include "client/clock.h"

#include <utility>

#include "absl/time/clock.h"

namespace workflows {
namespace {

class RealClock : public Clock {
 public:
  absl::Time Now() override { return absl::Now(); }
  void SleepFor(absl::Duration duration) override { absl::SleepFor(duration); }
};

}  // namespace

std::shared_ptr<Clock> Clock::Real() {
  static const auto* const kClock = new std::shared_ptr<Clock>(new RealClock);
  return *kClock;
}

SimulatedClock::SimulatedClock(absl::Time start) : now_(start) {}

absl::Time SimulatedClock::Now() {
  absl::MutexLock lock(&mu_);
  return now_;
}

void SimulatedClock::SleepFor(absl::Duration duration) {
  Advance(duration, /*record_sleep=*/true);
}

void SimulatedClock::AdvanceBy(absl::Duration duration) {
  Advance(duration, /*record_sleep=*/false);
}

void SimulatedClock::Advance(absl::Duration duration, bool record_sleep) {
  std::vector<std::shared_ptr<Observer>> to_notify;
  absl::Time now;
  {
    absl::MutexLock lock(&mu_);
    if (record_sleep) sleeps_.push_back(duration);
    if (duration > absl::ZeroDuration()) now_ += duration;
    now = now_;
    for (const auto& [id, observer] : observers_) to_notify.push_back(observer);
  }
  // Outside the lock: observers may read the clock or take their own locks.
  for (const auto& observer : to_notify) (*observer)(now);
}

std::vector<absl::Duration> SimulatedClock::sleeps() const {
  absl::MutexLock lock(&mu_);
  return sleeps_;
}

int SimulatedClock::AddObserver(Observer observer) {
  absl::MutexLock lock(&mu_);
  const int id = next_observer_id_++;
  observers_[id] = std::make_shared<Observer>(std::move(observer));
  return id;
}

void SimulatedClock::RemoveObserver(int id) {
  absl::MutexLock lock(&mu_);
  observers_.erase(id);
}

}  // namespace workflows
