// A deliberate data race next to absl::Mutex, in this project's own code.
// Thread A updates the counter under an absl::Mutex, thread B without taking
// it. Under --config=tsan the abseil annotations (tsan_absl_annotations.cc)
// must add only the happens-before edges the mutex really creates, so
// ThreadSanitizer must still report this race; absl_canary_test fails if
// it does not (the shim would then hide real races).
#include <cstdio>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace {

absl::Mutex mu;
int counter = 0;  // Meant to be guarded by mu; thread B forgets to lock.

}  // namespace

int main() {
#if defined(__SANITIZE_THREAD__)
  std::printf("tsan build\n");
#else
  std::printf("not a tsan build\n");
#endif
  std::thread a([] {
    for (int i = 0; i < 1000; ++i) {
      absl::MutexLock lock(&mu);
      ++counter;
    }
  });
  std::thread b([] {
    for (int i = 0; i < 1000; ++i) ++counter;  // The planted race.
  });
  a.join();
  b.join();
  absl::MutexLock lock(&mu);
  std::printf("counter=%d\n", counter);
  return 0;
}
