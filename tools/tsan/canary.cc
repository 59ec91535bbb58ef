// A deliberate data race in this project's own code. Under --config=tsan,
// ThreadSanitizer must report it even with tools/tsan/tsan.supp loaded; the
// companion test fails if it does not, because then the suppressions (or the
// sanitizer setup) hide real races and the TSan run proves nothing.
#include <cstdio>
#include <thread>

namespace {

int racy_counter = 0;  // Intentionally unsynchronized.

void Increment() {
  for (int i = 0; i < 1000; ++i) ++racy_counter;
}

}  // namespace

int main() {
#if defined(__SANITIZE_THREAD__)
  std::printf("tsan build\n");
#else
  std::printf("not a tsan build\n");
#endif
  std::thread a(Increment);
  std::thread b(Increment);
  a.join();
  b.join();
  std::printf("counter=%d\n", racy_counter);
  return 0;
}
