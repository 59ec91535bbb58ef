#include "tools/tsan_rpc_handoff.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace workflows::tsan {

#if defined(__SANITIZE_THREAD__)
namespace {
// Only its address matters: TSan keeps the released clocks there.
char rpc_handoff_key;
}  // namespace

void ServerResponding() { __tsan_release(&rpc_handoff_key); }
void ClientReceived() { __tsan_acquire(&rpc_handoff_key); }
#else
void ServerResponding() {}
void ClientReceived() {}
#endif

}  // namespace workflows::tsan
