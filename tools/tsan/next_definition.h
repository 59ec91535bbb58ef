#ifndef WORKFLOWS_TOOLS_TSAN_NEXT_DEFINITION_H_
#define WORKFLOWS_TOOLS_TSAN_NEXT_DEFINITION_H_

// How the TSan shims (tools/tsan/absl_annotations.cc,
// tools/tsan/grpc_annotations.cc) reach the library function they stand in
// for. Each shim defines a library entry point in the executable, exported,
// so the dynamic linker sends the libraries' calls to it; the shim then calls
// the library's own definition, which is the next one in the search order.
//
//   static auto* const real =
//       NextDefinition<void(Mutex*)>("tsan_absl_annotations",
//                                    "_ZN4absl7debian35Mutex4LockEv");
//   real(mu);
//
// Callers cache the result in a function-local static.

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

namespace workflows {
namespace tsan {

// The definition of the (mangled) symbol `name` after this module, as an
// `Fn*` (a member function takes `this` as its first argument in the
// Itanium ABI). A missing symbol means the shim and the library disagree, so
// it aborts with a message naming `shim` and `name`, not a null call later.
template <typename Fn>
Fn* NextDefinition(const char* shim, const char* name) {
  void* next = dlsym(RTLD_NEXT, name);
  if (next == nullptr) {
    std::fprintf(stderr, "%s: no definition of %s after the executable (%s)\n",
                 shim, name, dlerror());
    std::abort();
  }
  return reinterpret_cast<Fn*>(next);
}

}  // namespace tsan
}  // namespace workflows

#endif  // WORKFLOWS_TOOLS_TSAN_NEXT_DEFINITION_H_
