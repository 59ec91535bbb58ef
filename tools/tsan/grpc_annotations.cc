// ThreadSanitizer annotations for Debian's uninstrumented gRPC completion
// queues.
//
// Why: gRPC hands every finished operation to the thread that waits for it
// through a completion queue, and the server's queue is lock-free (an MPSC
// queue of atomics inside libgrpc). TSan sees none of it, so the request a
// client thread serialized looks unordered with the server thread parsing
// it, and what a handler wrote looks unordered with the client reading the
// response. (gRPC's own TSan builds annotate these spots; Debian's library is
// not built that way.)
//
// How: like tools/tsan/absl_annotations.cc, this file defines the entry
// points in the executable, exported (tools/tsan/exported_symbols.bzl), so the
// dynamic linker sends libgrpc's and libgrpc++'s PLT calls here;
// dlsym(RTLD_NEXT) finds libgrpc's definition. A completion queue promises that
// whatever happened before an operation's completion is queued (grpc_cq_end_op)
// happens before the waiter gets that operation's tag back
// (grpc_completion_queue_next/pluck), so:
//   - grpc_cq_end_op(cq, tag, ...): release on `tag`;
//   - grpc_completion_queue_next/pluck returning GRPC_OP_COMPLETE for `tag`:
//     acquire on `tag`.
// The edge is per tag (one pending operation: a CallOpSet, a server's
// SyncRequest), so unrelated calls stay unordered: two handlers racing on
// shared data are still reported (tools/tsan/grpc_canary.cc).
#include <grpc/grpc.h>

#if defined(__SANITIZE_THREAD__)

#include <sanitizer/tsan_interface.h>

#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "tools/tsan/next_definition.h"

// Defined in libgrpc (src/core/lib/surface/completion_queue.h, not installed);
// grpc_error_handle is absl::Status since gRPC 1.48.
struct grpc_cq_completion;
void grpc_cq_end_op(grpc_completion_queue* cq, void* tag, absl::Status error,
                    void (*done)(void* done_arg, grpc_cq_completion* storage),
                    void* done_arg, grpc_cq_completion* storage, bool internal);

// The part of grpc_core::CallCombiner (src/core/lib/iomgr/call_combiner.h, not
// installed) defined below, with the debug arguments Debian's build has.
struct grpc_closure;
namespace grpc_core {
class CallCombiner {
 public:
  void Start(grpc_closure* closure, absl::Status error, const char* file,
             int line, const char* reason);
  void Stop(const char* file, int line, const char* reason);
};
}  // namespace grpc_core

namespace {

// libgrpc's definition of `name` (see tools/tsan/next_definition.h).
template <typename Fn>
Fn* Real(const char* name) {
  return workflows::tsan::NextDefinition<Fn>("tsan_grpc_annotations", name);
}

// Tags are the addresses of gRPC++'s operation objects. Skip the small
// integers some C-API users pass as tags: TSan can only attach a sync object
// to application memory.
bool IsObjectAddress(const void* tag) {
  const auto address = reinterpret_cast<std::uintptr_t>(tag);
  return address >= 0x10000 && address % alignof(void*) == 0;
}

}  // namespace

void grpc_cq_end_op(grpc_completion_queue* cq, void* tag, absl::Status error,
                    void (*done)(void* done_arg, grpc_cq_completion* storage),
                    void* done_arg, grpc_cq_completion* storage,
                    bool internal) {
  static auto* const real = Real<decltype(grpc_cq_end_op)>(
      "_Z14grpc_cq_end_opP21grpc_completion_queuePvN4absl7debian36StatusEPFvS1_"
      "P18grpc_cq_completionES1_S6_b");
  if (IsObjectAddress(tag)) __tsan_release(tag);
  real(cq, tag, std::move(error), done, done_arg, storage, internal);
}

extern "C" {

grpc_event grpc_completion_queue_next(grpc_completion_queue* cq,
                                      gpr_timespec deadline, void* reserved) {
  static auto* const real =
      Real<decltype(grpc_completion_queue_next)>("grpc_completion_queue_next");
  grpc_event event = real(cq, deadline, reserved);
  if (event.type == GRPC_OP_COMPLETE && IsObjectAddress(event.tag)) {
    __tsan_acquire(event.tag);
  }
  return event;
}

grpc_event grpc_completion_queue_pluck(grpc_completion_queue* cq, void* tag,
                                       gpr_timespec deadline, void* reserved) {
  static auto* const real = Real<decltype(grpc_completion_queue_pluck)>(
      "grpc_completion_queue_pluck");
  grpc_event event = real(cq, tag, deadline, reserved);
  if (event.type == GRPC_OP_COMPLETE && IsObjectAddress(event.tag)) {
    __tsan_acquire(event.tag);
  }
  return event;
}

}  // extern "C"

// A call's CallCombiner runs the closures of its filter stack one at a time:
// Start() runs the closure at once if the combiner is idle, else queues it
// (lock-free) for the thread that holds the combiner, which runs it after its
// own Stop(). Annotated as gRPC's TSan builds do (a lock held while a closure
// runs): Start() releases what its thread did to the combiner, Stop() acquires
// it, so the next queued closure runs after both. This is how a server thread's
// response reaches the client thread that is still inside the call.
namespace grpc_core {

void CallCombiner::Start(grpc_closure* closure, absl::Status error,
                         const char* file, int line, const char* reason) {
  static auto* const real =
      Real<void(CallCombiner*, grpc_closure*, absl::Status, const char*, int,
                const char*)>(
          "_ZN9grpc_core12CallCombiner5StartEP12grpc_closureN4absl7debian36"
          "StatusEPKciS7_");
  __tsan_release(this);
  real(this, closure, std::move(error), file, line, reason);
}

void CallCombiner::Stop(const char* file, int line, const char* reason) {
  static auto* const real =
      Real<void(CallCombiner*, const char*, int, const char*)>(
          "_ZN9grpc_core12CallCombiner4StopEPKciS2_");
  real(this, file, line, reason);
  // After: the closure Stop() dequeued runs later, when this thread's
  // ExecCtx flushes, and its Start() may have come just before the dequeue.
  __tsan_acquire(this);
}

}  // namespace grpc_core

#endif  // defined(__SANITIZE_THREAD__)
