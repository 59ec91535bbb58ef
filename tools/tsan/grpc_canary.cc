// A deliberate data race in this project's own server-side code, reached the
// way every real handler is: on gRPC's server threads, below frames of
// Debian's uninstrumented libgrpc++/libgpr. Under --config=tsan,
// ThreadSanitizer must report it with tools/tsan/tsan.supp loaded;
// grpc_canary_test fails if it does not. This is the canary for the
// suppressions file itself: a `race:libgpr.so` line (which matches any frame
// of either stack, including the thread-creation stack) would hide it, while
// `race_top:` lines, which look only at the racing frame, do not. It also
// guards the happens-before annotations for abseil and gRPC (tools/tsan): an
// edge too coarse, such as handlers acquiring what other handlers released,
// would order the two calls and hide the race.
#include <cstdio>
#include <memory>
#include <thread>

#include "fake_server/fake_workflows_server.h"
#include "fake_server/in_memory_backend.h"
#include "proto/job.grpc.pb.h"

namespace {

int racy_calls = 0;  // Intentionally unsynchronized across handler threads.

// The default backend, but GetJob counts calls without a lock.
class RacyBackend : public workflows::fake::InMemoryBackend {
 public:
  using InMemoryBackend::InMemoryBackend;
  grpc::Status GetJob(workflows::fake::CallContext* call,
                      const descarteslabs::workflows::GetJobRequest& request,
                      descarteslabs::workflows::Job* response) override {
    ++racy_calls;  // The planted race.
    return InMemoryBackend::GetJob(call, request, response);
  }
};

}  // namespace

int main() {
#if defined(__SANITIZE_THREAD__)
  std::printf("tsan build\n");
#else
  std::printf("not a tsan build\n");
#endif
  workflows::fake::FakeServerOptions options;
  options.transport = workflows::fake::Transport::kInProcess;
  options.backend = std::make_shared<RacyBackend>();
  auto server = workflows::fake::FakeWorkflowsServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 2;
  }
  auto stub =
      descarteslabs::workflows::JobAPI::NewStub((*server)->InProcessChannel());
  auto call_many = [&stub] {
    for (int i = 0; i < 200; ++i) {
      grpc::ClientContext context;
      descarteslabs::workflows::GetJobRequest request;
      request.set_id("missing");
      descarteslabs::workflows::Job job;
      stub->GetJob(&context, request, &job);  // NOT_FOUND; the count matters.
    }
  };
  std::thread a(call_many);
  std::thread b(call_many);
  a.join();
  b.join();
  (*server)->Shutdown();
  std::printf("calls=%d\n", racy_calls);
  return 0;
}
