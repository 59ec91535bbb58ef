// ThreadSanitizer annotations for Debian's uninstrumented abseil
// synchronization (absl::Mutex, absl::CondVar, absl::Notification).
//
// Why: libabsl_synchronization.so is not built with -fsanitize=thread, so TSan
// sees none of the happens-before edges it creates and reports every access
// our code guards with absl::Mutex as a data race.
//
// How: under --config=tsan, .bazelrc links this library into every cc_binary
// and cc_test (--custom_malloc; it defines no allocator, so malloc is the
// default one) and passes `-Wl,--wrap=<symbol>` for each out-of-line entry
// point below. The linker then sends calls from OUR objects to
// `__wrap_<symbol>`, which tells TSan what the call does, exactly as an
// instrumented abseil does itself (mutex.cc's ABSL_TSAN_MUTEX_* annotations),
// and calls the library through `__real_<symbol>`. Calls made inside the
// Debian libraries (gRPC, abseil) are not rewritten and stay invisible.
//   - Mutex locks/unlocks: __tsan_mutex_pre/post_lock/unlock, so TSan models a
//     reader/writer mutex (happens-before, lock-order deadlock checks, misuse
//     such as unlocking a mutex that is not held).
//   - LockWhen*/Await*/CondVar::Wait*: the library evaluates our Condition
//     (and drops and retakes the lock) inside the call; TSan treats the whole
//     call as part of the lock operation, then sees the lock held again.
//   - Notification: Notify() releases on the address of the `notified_yet_`
//     atomic (found via tools/tsan_absl_layout.h); WaitForNotification*()
//     acquire on it, and the inline HasBeenNotified() is an instrumented
//     acquire-load of that same atomic, so it syncs too.
//   - ~Mutex: __tsan_mutex_destroy, so reused memory starts a fresh mutex.
//   - BlockingCounter: DecrementCount() releases, Wait() acquires.
// The inline header wrappers (MutexLock, ReaderMutexLock, WriterMutexLock,
// MutexLockMaybe, ~ReleasableMutexLock, Writer*) call the wrapped out-of-line
// functions; ReleasableMutexLock::Release() is out-of-line and wrapped.
// AssertHeld()/AssertNotHeld()/Signal() create no ordering and are not
// wrapped. Limit: TSan sees a mutex only through our objects' calls, so a
// mutex locked by our code must be unlocked (or waited on) by our code too;
// one locked/unlocked only inside Debian's libraries stays invisible.
// tools/tsan_absl_annotations_test.cc proves the edges are seen, and
// tools/tsan_absl_canary.cc that an unguarded access next to them is still
// reported.
#include "tools/tsan_absl_layout.h"

// Lets tests check that --config=tsan really linked the shim in.
extern "C" int WorkflowsTsanAbslAnnotationsLinked() {
#if defined(__SANITIZE_THREAD__)
  return 1;
#else
  return 0;
#endif
}

#if defined(__SANITIZE_THREAD__)

#include <sanitizer/tsan_interface.h>

#include <algorithm>
#include <string_view>
#include <vector>

#include "absl/base/options.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/time.h"

#define WORKFLOWS_TSAN_STR2(x) #x
#define WORKFLOWS_TSAN_STR(x) WORKFLOWS_TSAN_STR2(x)
// The mangled names below spell abseil's inline namespace.
static_assert(std::string_view(WORKFLOWS_TSAN_STR(
                  ABSL_OPTION_INLINE_NAMESPACE_NAME)) == "debian3",
              "abseil inline namespace changed: update the mangled names here "
              "and the --wrap list in .bazelrc");

namespace {

using absl::BlockingCounter;
using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::ReleasableMutexLock;
using absl::Time;

// Mutexes this thread holds in shared (reader) mode, so that waits, which
// drop and retake the lock in the mode it is held in, annotate that mode.
std::vector<const Mutex*>& ReaderHeld() {
  thread_local std::vector<const Mutex*> held;
  return held;
}

unsigned HeldFlags(const Mutex* mu) {
  const auto& held = ReaderHeld();
  return std::find(held.begin(), held.end(), mu) != held.end()
             ? __tsan_mutex_read_lock
             : 0;
}

void NoteReaderLocked(const Mutex* mu) { ReaderHeld().push_back(mu); }

void NoteReaderUnlocked(const Mutex* mu) {
  auto& held = ReaderHeld();
  auto it = std::find(held.begin(), held.end(), mu);
  if (it != held.end()) held.erase(it);
}

void* Addr(const void* p) { return const_cast<void*>(p); }

// Brackets a library call that releases `mu` and holds it again on return
// (Await, CondVar::Wait). TSan ignores the accesses made inside it, like the
// Condition evaluations abseil makes while it owns the lock word.
template <typename F>
auto WhileUnlocked(const Mutex* mu, F call) {
  const unsigned flags = HeldFlags(mu);
  __tsan_mutex_pre_unlock(Addr(mu), flags);
  auto result = call();
  __tsan_mutex_post_unlock(Addr(mu), flags);
  __tsan_mutex_pre_lock(Addr(mu), flags);
  __tsan_mutex_post_lock(Addr(mu), flags, 0);
  return result;
}

template <typename F>
auto Locking(const Mutex* mu, unsigned flags, F call) {
  __tsan_mutex_pre_lock(Addr(mu), flags);
  auto result = call();
  __tsan_mutex_post_lock(Addr(mu), flags, 0);
  if (flags & __tsan_mutex_read_lock) NoteReaderLocked(mu);
  return result;
}

template <typename F>
void Unlocking(const Mutex* mu, unsigned flags, F call) {
  if (flags & __tsan_mutex_read_lock) NoteReaderUnlocked(mu);
  __tsan_mutex_pre_unlock(Addr(mu), flags);
  call();
  __tsan_mutex_post_unlock(Addr(mu), flags);
}

template <typename F>
bool TryLocking(const Mutex* mu, unsigned flags, F call) {
  flags |= __tsan_mutex_try_lock;
  __tsan_mutex_pre_lock(Addr(mu), flags);
  const bool locked = call();
  __tsan_mutex_post_lock(
      Addr(mu), locked ? flags : flags | __tsan_mutex_try_lock_failed, 0);
  if (locked && (flags & __tsan_mutex_read_lock)) NoteReaderLocked(mu);
  return locked;
}

}  // namespace

// Each entry: declares the real function (the library's symbol, reached
// through --wrap as __real_<mangled>) and defines __wrap_<mangled>.
// Member functions take `this` as their first argument in the Itanium ABI.
#define REAL(mangled) __real_##mangled
#define WRAP(mangled) __wrap_##mangled

extern "C" {

// ---- absl::Mutex ----------------------------------------------------------
void REAL(_ZN4absl7debian35Mutex4LockEv)(Mutex*);
void WRAP(_ZN4absl7debian35Mutex4LockEv)(Mutex* mu) {
  Locking(mu, 0, [&] {
    REAL(_ZN4absl7debian35Mutex4LockEv)(mu);
    return 0;
  });
}

void REAL(_ZN4absl7debian35Mutex6UnlockEv)(Mutex*);
void WRAP(_ZN4absl7debian35Mutex6UnlockEv)(Mutex* mu) {
  Unlocking(mu, 0, [&] { REAL(_ZN4absl7debian35Mutex6UnlockEv)(mu); });
}

bool REAL(_ZN4absl7debian35Mutex7TryLockEv)(Mutex*);
bool WRAP(_ZN4absl7debian35Mutex7TryLockEv)(Mutex* mu) {
  return TryLocking(mu, 0,
                    [&] { return REAL(_ZN4absl7debian35Mutex7TryLockEv)(mu); });
}

void REAL(_ZN4absl7debian35Mutex10ReaderLockEv)(Mutex*);
void WRAP(_ZN4absl7debian35Mutex10ReaderLockEv)(Mutex* mu) {
  Locking(mu, __tsan_mutex_read_lock, [&] {
    REAL(_ZN4absl7debian35Mutex10ReaderLockEv)(mu);
    return 0;
  });
}

void REAL(_ZN4absl7debian35Mutex12ReaderUnlockEv)(Mutex*);
void WRAP(_ZN4absl7debian35Mutex12ReaderUnlockEv)(Mutex* mu) {
  Unlocking(mu, __tsan_mutex_read_lock, [&] {
    REAL(_ZN4absl7debian35Mutex12ReaderUnlockEv)(mu);
  });
}

bool REAL(_ZN4absl7debian35Mutex13ReaderTryLockEv)(Mutex*);
bool WRAP(_ZN4absl7debian35Mutex13ReaderTryLockEv)(Mutex* mu) {
  return TryLocking(mu, __tsan_mutex_read_lock, [&] {
    return REAL(_ZN4absl7debian35Mutex13ReaderTryLockEv)(mu);
  });
}

void REAL(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE)(Mutex*,
                                                             const Condition&);
void WRAP(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE)(
    Mutex* mu, const Condition& cond) {
  Locking(mu, 0, [&] {
    REAL(_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE)(mu, cond);
    return 0;
  });
}

void REAL(_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE)(
    Mutex*, const Condition&);
void WRAP(_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE)(
    Mutex* mu, const Condition& cond) {
  Locking(mu, __tsan_mutex_read_lock, [&] {
    REAL(_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE)(mu, cond);
    return 0;
  });
}

// The *WithTimeout/*WithDeadline lock variants hold the mutex on return
// whether or not the condition became true.
bool REAL(
    _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex*, const Condition&, Duration);
bool WRAP(
    _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex* mu, const Condition& cond, Duration timeout) {
  return Locking(mu, 0, [&] {
    return REAL(
        _ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
        mu, cond, timeout);
  });
}

bool REAL(
    _ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex*, const Condition&, Duration);
bool WRAP(
    _ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex* mu, const Condition& cond, Duration timeout) {
  return Locking(mu, __tsan_mutex_read_lock, [&] {
    return REAL(
        _ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
        mu, cond, timeout);
  });
}

bool REAL(
    _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
    Mutex*, const Condition&, Time);
bool WRAP(
    _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
    Mutex* mu, const Condition& cond, Time deadline) {
  return Locking(mu, 0, [&] {
    return REAL(
        _ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
        mu, cond, deadline);
  });
}

bool REAL(
    _ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
    Mutex*, const Condition&, Time);
bool WRAP(
    _ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
    Mutex* mu, const Condition& cond, Time deadline) {
  return Locking(mu, __tsan_mutex_read_lock, [&] {
    return REAL(
        _ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
        mu, cond, deadline);
  });
}

void REAL(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE)(Mutex*,
                                                          const Condition&);
void WRAP(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE)(
    Mutex* mu, const Condition& cond) {
  WhileUnlocked(mu, [&] {
    REAL(_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE)(mu, cond);
    return 0;
  });
}

bool REAL(
    _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex*, const Condition&, Duration);
bool WRAP(
    _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
    Mutex* mu, const Condition& cond, Duration timeout) {
  return WhileUnlocked(mu, [&] {
    return REAL(
        _ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE)(
        mu, cond, timeout);
  });
}

bool REAL(
    _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
    Mutex*, const Condition&, Time);
bool WRAP(
    _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
    Mutex* mu, const Condition& cond, Time deadline) {
  return WhileUnlocked(mu, [&] {
    return REAL(
        _ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE)(
        mu, cond, deadline);
  });
}

void REAL(_ZN4absl7debian35MutexD1Ev)(Mutex*);
void WRAP(_ZN4absl7debian35MutexD1Ev)(Mutex* mu) {
  REAL(_ZN4absl7debian35MutexD1Ev)(mu);
  __tsan_mutex_destroy(mu, __tsan_mutex_not_static);
}

void REAL(_ZN4absl7debian35MutexD2Ev)(Mutex*);
void WRAP(_ZN4absl7debian35MutexD2Ev)(Mutex* mu) {
  REAL(_ZN4absl7debian35MutexD2Ev)(mu);
  __tsan_mutex_destroy(mu, __tsan_mutex_not_static);
}

// ---- absl::ReleasableMutexLock --------------------------------------------
// Release() unlocks inside the library (not through a wrapped call).
void REAL(_ZN4absl7debian319ReleasableMutexLock7ReleaseEv)(
    ReleasableMutexLock*);
void WRAP(_ZN4absl7debian319ReleasableMutexLock7ReleaseEv)(
    ReleasableMutexLock* lock) {
  Mutex* mu = workflows::tsan::HeldMutex(*lock);
  Unlocking(mu, 0, [&] {
    REAL(_ZN4absl7debian319ReleasableMutexLock7ReleaseEv)(lock);
  });
}

// ---- absl::CondVar --------------------------------------------------------
void REAL(_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE)(CondVar*, Mutex*);
void WRAP(_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE)(CondVar* cv, Mutex* mu) {
  WhileUnlocked(mu, [&] {
    REAL(_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE)(cv, mu);
    return 0;
  });
}

bool REAL(_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE)(
    CondVar*, Mutex*, Duration);
bool WRAP(_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE)(
    CondVar* cv, Mutex* mu, Duration timeout) {
  return WhileUnlocked(mu, [&] {
    return REAL(
        _ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE)(
        cv, mu, timeout);
  });
}

bool REAL(_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE)(
    CondVar*, Mutex*, Time);
bool WRAP(_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE)(
    CondVar* cv, Mutex* mu, Time deadline) {
  return WhileUnlocked(mu, [&] {
    return REAL(
        _ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE)(
        cv, mu, deadline);
  });
}

// ---- absl::Notification ---------------------------------------------------
void REAL(_ZN4absl7debian312Notification6NotifyEv)(Notification*);
void WRAP(_ZN4absl7debian312Notification6NotifyEv)(Notification* n) {
  __tsan_release(Addr(workflows::tsan::NotifiedFlag(*n)));
  REAL(_ZN4absl7debian312Notification6NotifyEv)(n);
}

void REAL(_ZNK4absl7debian312Notification19WaitForNotificationEv)(
    const Notification*);
void WRAP(_ZNK4absl7debian312Notification19WaitForNotificationEv)(
    const Notification* n) {
  REAL(_ZNK4absl7debian312Notification19WaitForNotificationEv)(n);
  __tsan_acquire(Addr(workflows::tsan::NotifiedFlag(*n)));
}

bool REAL(
    _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE)(
    const Notification*, Duration);
bool WRAP(
    _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE)(
    const Notification* n, Duration timeout) {
  const bool notified = REAL(
      _ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_8DurationE)(
      n, timeout);
  if (notified) __tsan_acquire(Addr(workflows::tsan::NotifiedFlag(*n)));
  return notified;
}

bool REAL(
    _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE)(
    const Notification*, Time);
bool WRAP(
    _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE)(
    const Notification* n, Time deadline) {
  const bool notified = REAL(
      _ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_4TimeE)(
      n, deadline);
  if (notified) __tsan_acquire(Addr(workflows::tsan::NotifiedFlag(*n)));
  return notified;
}

// ---- absl::BlockingCounter ------------------------------------------------
// Each DecrementCount() publishes what its thread did before; Wait() sees it
// all. (The `true` return of the last DecrementCount() gets no acquire: the
// waiter may already have destroyed the counter by then. absl::Barrier is not
// wrapped for the same reason: the thread whose Block() returns true deletes
// it while the others are still returning.)
bool REAL(_ZN4absl7debian315BlockingCounter14DecrementCountEv)(
    BlockingCounter*);
bool WRAP(_ZN4absl7debian315BlockingCounter14DecrementCountEv)(
    BlockingCounter* counter) {
  __tsan_release(counter);
  return REAL(_ZN4absl7debian315BlockingCounter14DecrementCountEv)(counter);
}

void REAL(_ZN4absl7debian315BlockingCounter4WaitEv)(BlockingCounter*);
void WRAP(_ZN4absl7debian315BlockingCounter4WaitEv)(BlockingCounter* counter) {
  REAL(_ZN4absl7debian315BlockingCounter4WaitEv)(counter);
  __tsan_acquire(counter);
}

}  // extern "C"

#endif  // defined(__SANITIZE_THREAD__)
