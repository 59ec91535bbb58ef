// ThreadSanitizer annotations for Debian's uninstrumented abseil
// synchronization (absl::Mutex, absl::CondVar, absl::Notification), for our
// code AND for Debian's gRPC.
//
// Why: libabsl_synchronization.so is not built with -fsanitize=thread, so TSan
// sees none of the happens-before edges it creates. Our code guards data with
// absl::Mutex; gRPC (libgpr, libgrpc, libgrpc++) hands requests, responses
// and call state between its threads under gpr_mu/grpc_core::Mutex, which are
// absl::Mutex too. Without these edges TSan reports every such access made by
// instrumented code (ours, and the protobuf/gRPC header code compiled into
// our binaries) as a data race, and the only cure was suppressing whole
// libraries, which hid races in our own handlers as well.
//
// How: this file DEFINES the out-of-line abseil entry points below in the
// executable. Under --config=tsan, .bazelrc links it into every cc_binary and
// cc_test (--custom_malloc; it defines no allocator) and exports each symbol
// from the executable (-Wl,--export-dynamic-symbol=<mangled>, one per name in
// tools/tsan/exported_symbols.bzl, checked by exported_symbols_test). The
// dynamic linker searches the executable first, so calls from our objects AND
// from the Debian libraries (which call them through the PLT, as does abseil
// itself) land here. Each definition tells TSan what the call does, exactly
// as an instrumented abseil does itself (mutex.cc's ABSL_TSAN_MUTEX_*
// annotations), and calls abseil's definition, found with
// dlsym(RTLD_NEXT, <mangled>).
//   - Mutex locks/unlocks: __tsan_mutex_pre/post_lock/unlock, so TSan models a
//     reader/writer mutex (happens-before, lock-order deadlock checks, misuse
//     such as unlocking a mutex that is not held).
//   - LockWhen*/Await*/CondVar::Wait*: the library evaluates the Condition
//     (and drops and retakes the lock) inside the call; TSan treats the whole
//     call as part of the lock operation, then sees the lock held again.
//   - Notification: Notify() releases on the address of the `notified_yet_`
//     atomic (found via tools/tsan/absl_layout.h); WaitForNotification*()
//     acquire on it, and the inline HasBeenNotified() is an instrumented
//     acquire-load of that same atomic, so it syncs too.
//   - ~Mutex: __tsan_mutex_destroy, so reused memory starts a fresh mutex.
//   - BlockingCounter: DecrementCount() releases, Wait() acquires.
// abseil calls its own entry points through the PLT too: Notify() locks its
// internal mutex (annotated like any other, which also orders the waiter's
// ~Notification after Notify()), and AwaitWithTimeout() calls
// AwaitWithDeadline() on the same mutex (passed straight through, so each
// operation on a mutex is annotated once, by the outermost call).
// AssertHeld()/AssertNotHeld()/Signal() create no ordering and are not defined
// here. gRPC's lock-free hand-offs (atomics inside libgrpc) stay invisible: see
// tools/tsan/tsan.supp for what that still costs.
// tools/tsan/absl_annotations_test.cc proves the edges are seen and that
// the library calls really come here; tools/tsan/absl_canary.cc and
// tools/tsan/grpc_canary.cc that an unguarded access next to them is still
// reported.
#include "tools/tsan/absl_layout.h"

// Lets tests check that --config=tsan really linked the shim in.
extern "C" int WorkflowsTsanAbslAnnotationsLinked() {
#if defined(__SANITIZE_THREAD__)
  return 1;
#else
  return 0;
#endif
}

#if defined(__SANITIZE_THREAD__)

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "absl/base/options.h"
#include "absl/synchronization/blocking_counter.h"
#include "absl/time/time.h"
#include "tools/tsan/next_definition.h"

#define WORKFLOWS_TSAN_STR2(x) #x
#define WORKFLOWS_TSAN_STR(x) WORKFLOWS_TSAN_STR2(x)
// The mangled names below spell abseil's inline namespace.
static_assert(std::string_view(WORKFLOWS_TSAN_STR(
                  ABSL_OPTION_INLINE_NAMESPACE_NAME)) == "debian3",
              "abseil inline namespace changed: update the mangled names here "
              "and in tools/tsan/exported_symbols.bzl");

namespace {

using absl::BlockingCounter;
using absl::Condition;
using absl::CondVar;
using absl::Duration;
using absl::Mutex;
using absl::Notification;
using absl::ReleasableMutexLock;
using absl::Time;

// abseil's definition of `mangled` (see tools/tsan/next_definition.h).
template <typename Fn>
Fn* Real(const char* mangled) {
  return workflows::tsan::NextDefinition<Fn>("tsan_absl_annotations", mangled);
}

// The mutex whose definition below this thread is inside, if any. Trivially
// destructible, so gRPC threads may lock mutexes while they exit.
thread_local const Mutex* t_inside = nullptr;

// False when this thread is already inside a definition below for the same
// mutex: abseil calling itself (AwaitWithTimeout() calls AwaitWithDeadline(),
// ReleasableMutexLock::Release() calls Unlock()), which the outer call
// annotates. Calls on another mutex, such as Notification::Notify() locking
// its own, are annotated as usual.
class Outermost {
 public:
  explicit Outermost(const Mutex* mu)
      : previous_(t_inside), outermost_(t_inside != mu) {
    t_inside = mu;
  }
  ~Outermost() { t_inside = previous_; }
  Outermost(const Outermost&) = delete;
  Outermost& operator=(const Outermost&) = delete;
  explicit operator bool() const { return outermost_; }

 private:
  const Mutex* const previous_;
  const bool outermost_;
};

// Mutexes this thread holds in shared (reader) mode, so that waits, which
// drop and retake the lock in the mode it is held in, annotate that mode.
// A fixed array, trivially destructible like t_depth; only our code takes
// reader locks, and never this many at once.
constexpr int kMaxReaderHeld = 16;
thread_local const Mutex* t_reader_held[kMaxReaderHeld];
thread_local int t_reader_held_count = 0;

unsigned HeldFlags(const Mutex* mu) {
  for (int i = 0; i < t_reader_held_count; ++i) {
    if (t_reader_held[i] == mu) return __tsan_mutex_read_lock;
  }
  return 0;
}

void NoteReaderLocked(const Mutex* mu) {
  if (t_reader_held_count == kMaxReaderHeld) {
    std::fprintf(stderr, "tsan_absl_annotations: more than %d reader locks\n",
                 kMaxReaderHeld);
    std::abort();
  }
  t_reader_held[t_reader_held_count++] = mu;
}

void NoteReaderUnlocked(const Mutex* mu) {
  for (int i = t_reader_held_count - 1; i >= 0; --i) {
    if (t_reader_held[i] == mu) {
      t_reader_held[i] = t_reader_held[--t_reader_held_count];
      return;
    }
  }
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

// For tools/tsan/absl_annotations_test.cc: 1 if the dynamic linker resolves
// `mangled` (one of the symbols defined below) to this file's definition, so
// the Debian libraries' calls are annotated too, not only ours.
extern "C" int WorkflowsTsanAbslInterposes(const char* mangled) {
  void* first = dlsym(RTLD_DEFAULT, mangled);
  Dl_info first_info;
  Dl_info this_info;
  return first != nullptr && dladdr(first, &first_info) != 0 &&
                 dladdr(reinterpret_cast<void*>(&WorkflowsTsanAbslInterposes),
                        &this_info) != 0 &&
                 first_info.dli_fbase == this_info.dli_fbase
             ? 1
             : 0;
}

namespace absl {
ABSL_NAMESPACE_BEGIN

// ---- absl::Mutex ----------------------------------------------------------
void Mutex::Lock() {
  static auto* const real = Real<void(Mutex*)>("_ZN4absl7debian35Mutex4LockEv");
  Outermost outer(this);
  if (!outer) return real(this);
  Locking(this, 0, [&] {
    real(this);
    return 0;
  });
}

void Mutex::Unlock() {
  static auto* const real =
      Real<void(Mutex*)>("_ZN4absl7debian35Mutex6UnlockEv");
  Outermost outer(this);
  if (!outer) return real(this);
  Unlocking(this, 0, [&] { real(this); });
}

bool Mutex::TryLock() {
  static auto* const real =
      Real<bool(Mutex*)>("_ZN4absl7debian35Mutex7TryLockEv");
  Outermost outer(this);
  if (!outer) return real(this);
  return TryLocking(this, 0, [&] { return real(this); });
}

void Mutex::ReaderLock() {
  static auto* const real =
      Real<void(Mutex*)>("_ZN4absl7debian35Mutex10ReaderLockEv");
  Outermost outer(this);
  if (!outer) return real(this);
  Locking(this, __tsan_mutex_read_lock, [&] {
    real(this);
    return 0;
  });
}

void Mutex::ReaderUnlock() {
  static auto* const real =
      Real<void(Mutex*)>("_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Outermost outer(this);
  if (!outer) return real(this);
  Unlocking(this, __tsan_mutex_read_lock, [&] { real(this); });
}

bool Mutex::ReaderTryLock() {
  static auto* const real =
      Real<bool(Mutex*)>("_ZN4absl7debian35Mutex13ReaderTryLockEv");
  Outermost outer(this);
  if (!outer) return real(this);
  return TryLocking(this, __tsan_mutex_read_lock, [&] { return real(this); });
}

void Mutex::LockWhen(const Condition& cond) {
  static auto* const real = Real<void(Mutex*, const Condition&)>(
      "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  Outermost outer(this);
  if (!outer) return real(this, cond);
  Locking(this, 0, [&] {
    real(this, cond);
    return 0;
  });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static auto* const real = Real<void(Mutex*, const Condition&)>(
      "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Outermost outer(this);
  if (!outer) return real(this, cond);
  Locking(this, __tsan_mutex_read_lock, [&] {
    real(this, cond);
    return 0;
  });
}

// The *WithTimeout/*WithDeadline lock variants hold the mutex on return
// whether or not the condition became true.
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static auto* const real = Real<bool(Mutex*, const Condition&, Duration)>(
      "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_"
      "8DurationE");
  Outermost outer(this);
  if (!outer) return real(this, cond, timeout);
  return Locking(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static auto* const real = Real<bool(Mutex*, const Condition&, Duration)>(
      "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_"
      "8DurationE");
  Outermost outer(this);
  if (!outer) return real(this, cond, timeout);
  return Locking(this, __tsan_mutex_read_lock,
                 [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static auto* const real = Real<bool(Mutex*, const Condition&, Time)>(
      "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_"
      "4TimeE");
  Outermost outer(this);
  if (!outer) return real(this, cond, deadline);
  return Locking(this, 0, [&] { return real(this, cond, deadline); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static auto* const real = Real<bool(Mutex*, const Condition&, Time)>(
      "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_"
      "4TimeE");
  Outermost outer(this);
  if (!outer) return real(this, cond, deadline);
  return Locking(this, __tsan_mutex_read_lock,
                 [&] { return real(this, cond, deadline); });
}

void Mutex::Await(const Condition& cond) {
  static auto* const real = Real<void(Mutex*, const Condition&)>(
      "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  Outermost outer(this);
  if (!outer) return real(this, cond);
  WhileUnlocked(this, [&] {
    real(this, cond);
    return 0;
  });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static auto* const real = Real<bool(Mutex*, const Condition&, Duration)>(
      "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_"
      "8DurationE");
  Outermost outer(this);
  if (!outer) return real(this, cond, timeout);
  return WhileUnlocked(this, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static auto* const real = Real<bool(Mutex*, const Condition&, Time)>(
      "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  Outermost outer(this);
  if (!outer) return real(this, cond, deadline);
  return WhileUnlocked(this, [&] { return real(this, cond, deadline); });
}

// abseil defines D1 and D2 at one address; ours are one definition too.
Mutex::~Mutex() {
  static auto* const real = Real<void(Mutex*)>("_ZN4absl7debian35MutexD1Ev");
  real(this);
  __tsan_mutex_destroy(this, __tsan_mutex_not_static);
}

// ---- absl::ReleasableMutexLock --------------------------------------------
// Release() unlocks inside the library (not through Mutex::Unlock's PLT
// slot), so it is annotated here.
void ReleasableMutexLock::Release() {
  static auto* const real = Real<void(ReleasableMutexLock*)>(
      "_ZN4absl7debian319ReleasableMutexLock7ReleaseEv");
  Mutex* mu = workflows::tsan::HeldMutex(*this);
  Outermost outer(mu);
  if (!outer) return real(this);
  Unlocking(mu, 0, [&] { real(this); });
}

// ---- absl::CondVar --------------------------------------------------------
void CondVar::Wait(Mutex* mu) {
  static auto* const real = Real<void(CondVar*, Mutex*)>(
      "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Outermost outer(mu);
  if (!outer) return real(this, mu);
  WhileUnlocked(mu, [&] {
    real(this, mu);
    return 0;
  });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static auto* const real = Real<bool(CondVar*, Mutex*, Duration)>(
      "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  Outermost outer(mu);
  if (!outer) return real(this, mu, timeout);
  return WhileUnlocked(mu, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static auto* const real = Real<bool(CondVar*, Mutex*, Time)>(
      "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  Outermost outer(mu);
  if (!outer) return real(this, mu, deadline);
  return WhileUnlocked(mu, [&] { return real(this, mu, deadline); });
}

// ---- absl::Notification ---------------------------------------------------
void Notification::Notify() {
  static auto* const real =
      Real<void(Notification*)>("_ZN4absl7debian312Notification6NotifyEv");
  __tsan_release(Addr(workflows::tsan::NotifiedFlag(*this)));
  real(this);
}

void Notification::WaitForNotification() const {
  static auto* const real = Real<void(const Notification*)>(
      "_ZNK4absl7debian312Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(Addr(workflows::tsan::NotifiedFlag(*this)));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  static auto* const real = Real<bool(const Notification*, Duration)>(
      "_ZNK4absl7debian312Notification30WaitForNotificationWithTimeoutENS0_"
      "8DurationE");
  const bool notified = real(this, timeout);
  if (notified) __tsan_acquire(Addr(workflows::tsan::NotifiedFlag(*this)));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  static auto* const real = Real<bool(const Notification*, Time)>(
      "_ZNK4absl7debian312Notification31WaitForNotificationWithDeadlineENS0_"
      "4TimeE");
  const bool notified = real(this, deadline);
  if (notified) __tsan_acquire(Addr(workflows::tsan::NotifiedFlag(*this)));
  return notified;
}

// ---- absl::BlockingCounter ------------------------------------------------
// Each DecrementCount() publishes what its thread did before; Wait() sees it
// all. (The `true` return of the last DecrementCount() gets no acquire: the
// waiter may already have destroyed the counter by then. absl::Barrier is not
// defined here: its Block() locks and awaits its mutex through the PLT, so
// the Mutex definitions above already order it.)
bool BlockingCounter::DecrementCount() {
  static auto* const real = Real<bool(BlockingCounter*)>(
      "_ZN4absl7debian315BlockingCounter14DecrementCountEv");
  __tsan_release(this);
  return real(this);
}

void BlockingCounter::Wait() {
  static auto* const real =
      Real<void(BlockingCounter*)>("_ZN4absl7debian315BlockingCounter4WaitEv");
  real(this);
  __tsan_acquire(this);
}

ABSL_NAMESPACE_END
}  // namespace absl

#endif  // defined(__SANITIZE_THREAD__)
