#ifndef WORKFLOWS_CLIENT_CLOCK_H_
#define WORKFLOWS_CLIENT_CLOCK_H_

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace workflows {

// Clock is the single source of time for retry backoff, token expiry and the
// fake backend's job progression. Production code uses `Clock::Real()`; tests
// pass a `SimulatedClock` so that nothing sleeps on real time.
//
//   std::shared_ptr<Clock> clock = Clock::Real();
//   absl::Time start = clock->Now();
//   clock->SleepFor(absl::Milliseconds(100));
class Clock {
 public:
  virtual ~Clock() = default;

  virtual absl::Time Now() = 0;

  // Blocks the caller for `duration` of this clock's time.
  virtual void SleepFor(absl::Duration duration) = 0;

  // The process-wide wall clock. Thread-safe.
  static std::shared_ptr<Clock> Real();
};

// SimulatedClock is a Clock that only moves when told to. `SleepFor` returns at
// once after advancing time by the requested amount, so a client that backs
// off six times with 60 s caps finishes in microseconds while seeing the same
// timeline it would in production. Observers let other components (e.g. the
// fake backend's job progression) react when time moves. Thread-safe.
//
//   auto clock = std::make_shared<workflows::SimulatedClock>();
//   clock->AdvanceBy(absl::Seconds(5));
//   EXPECT_THAT(clock->sleeps(), ElementsAre(...));
class SimulatedClock : public Clock {
 public:
  using Observer = std::function<void(absl::Time now)>;

  // Starts at 2026-01-01T00:00:00Z unless told otherwise.
  explicit SimulatedClock(absl::Time start = absl::FromUnixSeconds(1767225600));

  absl::Time Now() override;

  // Records `duration`, then advances time by it. Never blocks.
  void SleepFor(absl::Duration duration) override;

  // Moves time forward by `duration` (negative durations are ignored) and
  // notifies observers.
  void AdvanceBy(absl::Duration duration);

  // Every duration passed to SleepFor so far, in order.
  std::vector<absl::Duration> sleeps() const;

  // Registers `observer`, called after each change of time with the new time,
  // outside the clock's lock. Returns an id for RemoveObserver.
  int AddObserver(Observer observer);
  void RemoveObserver(int id);

 private:
  void Advance(absl::Duration duration, bool record_sleep);

  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Duration> sleeps_ ABSL_GUARDED_BY(mu_);
  std::map<int, std::shared_ptr<Observer>> observers_ ABSL_GUARDED_BY(mu_);
  int next_observer_id_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_CLOCK_H_
