// Where Debian's abseil keeps state that ThreadSanitizer must see, for the
// TSan shim (tools/tsan/absl_annotations.cc) and its test.
//
// absl::Notification::HasBeenNotified() is inline: it is an acquire-load of the
// private `std::atomic<bool> notified_yet_`, stored by the uninstrumented
// Notify(). The shim announces a release on that atomic's address before
// Notify(), so TSan pairs it with the instrumented load. The address comes
// from a mirror of the class layout, pinned by static_asserts here and
// checked at run time by tools/tsan/absl_annotations_test.cc.
//
// Example:
//   absl::Notification done;
//   const std::atomic<bool>* flag = workflows::tsan::NotifiedFlag(done);
#ifndef WORKFLOWS_TOOLS_TSAN_ABSL_LAYOUT_H_
#define WORKFLOWS_TOOLS_TSAN_ABSL_LAYOUT_H_

#include <atomic>
#include <cstddef>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace workflows::tsan {

// Mirror of absl::Notification's members (absl 20220623, notification.h):
//   mutable Mutex mutex_;
//   std::atomic<bool> notified_yet_;
struct NotificationLayout {
  absl::Mutex mutex;
  std::atomic<bool> notified_yet;
};
static_assert(sizeof(NotificationLayout) == sizeof(absl::Notification),
              "absl::Notification layout changed; update NotificationLayout");
static_assert(alignof(NotificationLayout) == alignof(absl::Notification),
              "absl::Notification layout changed; update NotificationLayout");
// ReleasableMutexLock's only member is `absl::Mutex* mu_`.
static_assert(sizeof(absl::ReleasableMutexLock) == sizeof(absl::Mutex*),
              "absl::ReleasableMutexLock layout changed");

inline const std::atomic<bool>* NotifiedFlag(const absl::Notification& n) {
  return reinterpret_cast<const std::atomic<bool>*>(
      reinterpret_cast<const char*>(&n) +
      offsetof(NotificationLayout, notified_yet));
}

// The mutex a live absl::ReleasableMutexLock still holds (nullptr once
// released).
inline absl::Mutex* HeldMutex(const absl::ReleasableMutexLock& lock) {
  return *reinterpret_cast<absl::Mutex* const*>(&lock);
}

}  // namespace workflows::tsan

#endif  // WORKFLOWS_TOOLS_TSAN_ABSL_LAYOUT_H_
