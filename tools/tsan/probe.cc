// An empty program: under --config=tsan it carries //tools/tsan:annotations
// (--custom_malloc), for exported_symbols_test to inspect.
#include <cstdio>

int main() {
#if defined(__SANITIZE_THREAD__)
  std::printf("tsan build\n");
#else
  std::printf("not a tsan build\n");
#endif
  return 0;
}
