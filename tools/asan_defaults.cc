// Linked into every binary built with --config=asan (through --custom_malloc
// in .bazelrc; it defines no allocator). Suppresses leaks inside Debian's
// c-ares only: resolving "localhost" leaks a few bytes there on every
// process. Leaks in project code or gRPC are still reported.
extern "C" const char* __lsan_default_suppressions() {
  return "leak:libcares.so\n";
}
