// A deliberate data race between a server handler and an unrelated client-side
// test thread. Under --config=tsan, ThreadSanitizer must report it with
// tools/tsan/tsan.supp loaded; handler_canary_test fails if it does not.
//
// The handler of a call made through workflows::Client over TCP writes
// `shared_value`. Thread B, which takes no part in the call, waits (on a
// relaxed atomic, which orders nothing for TSan) until the call has returned,
// then writes `shared_value` too. Nothing orders the two writes, so any
// happens-before edge that the kit's TSan setup would add from a handler to
// threads that did not receive its response (a process-wide key released by
// every handler and acquired elsewhere, as the kit once had) would hide the
// race. (Thread B cannot also make a call of its own first: inside one
// process gRPC's own locks, which the annotations show TSan, really do order
// a later response after earlier handler steps.)
#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>

#include "client/auth.h"
#include "client/client.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/in_memory_backend.h"
#include "proto/job.pb.h"

namespace {

namespace wf = descarteslabs::workflows;

int shared_value = 0;  // Intentionally unsynchronized: the planted race.
// Relaxed loads and stores only: they let thread B wait without creating a
// happens-before edge.
std::atomic<bool> call_returned{false};

// The default backend, but GetJob("racer") writes shared_value.
class RacyBackend : public workflows::fake::InMemoryBackend {
 public:
  using InMemoryBackend::InMemoryBackend;
  grpc::Status GetJob(workflows::fake::CallContext* call,
                      const wf::GetJobRequest& request,
                      wf::Job* response) override {
    if (request.id() == "racer") shared_value = 1;  // Handler side.
    return InMemoryBackend::GetJob(call, request, response);
  }
};

workflows::ClientOptions DialLoopback(int port) {
  workflows::ClientOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  options.use_insecure_channel = true;
  options.auth = std::make_shared<workflows::StaticTokenAuth>("t0ken");
  return options;
}

}  // namespace

int main() {
#if defined(__SANITIZE_THREAD__)
  std::printf("tsan build\n");
#else
  std::printf("not a tsan build\n");
#endif
  workflows::fake::FakeServerOptions options;
  options.transport = workflows::fake::Transport::kInsecureTcp;
  options.backend = std::make_shared<RacyBackend>();
  auto server = workflows::fake::FakeWorkflowsServer::Start(options);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 2;
  }
  const int port = (*server)->port();

  std::thread b([] {
    while (!call_returned.load(std::memory_order_relaxed)) {
      std::this_thread::yield();
    }
    shared_value = 2;  // Test side, unordered with the handler.
  });

  workflows::Client client(DialLoopback(port));
  wf::GetJobRequest request;
  request.set_id("racer");
  client.GetJob(request);  // NOT_FOUND; what matters is the handler.
  call_returned.store(true, std::memory_order_relaxed);
  b.join();
  (*server)->Shutdown();
  std::printf("shared_value=%d\n", shared_value);
  return 0;
}
