#ifndef WORKFLOWS_FAKE_SERVER_SERVICE_ADAPTERS_H_
#define WORKFLOWS_FAKE_SERVER_SERVICE_ADAPTERS_H_

#include <grpcpp/impl/codegen/service_type.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "client/clock.h"
#include "fake_server/backend.h"
#include "fake_server/journal.h"
#include "fake_server/script.h"
#include "fake_server/server_call_context.h"

namespace workflows {
namespace fake {

// What every call of one fake server shares. Owned by FakeWorkflowsServer,
// which keeps it alive until the grpc::Server is gone.
struct ServerCore {
  Backend* backend = nullptr;
  Script* script = nullptr;
  Journal* journal = nullptr;
  Clock* clock = nullptr;
  const ShutdownSignal* shutdown = nullptr;
  // True when every call arrives over one in-process transport, so the
  // caller's peer and transport identity are the same for all calls and are
  // read from gRPC once, on the first recorded call.
  bool fixed_transport_identity = false;
  // Requests larger than this end in RESOURCE_EXHAUSTED, journaled.
  size_t max_request_bytes = size_t{4} << 20;
  // std::, not absl::call_once: abseil's runs on Debian's uninstrumented
  // spinlocks, so ThreadSanitizer could not see its happens-before edge.
  mutable std::once_flag identity_once;
  mutable std::shared_ptr<const std::string> transport_peer;
  mutable std::shared_ptr<const CallerIdentity> transport_identity;
};

// The grpc::Service implementations of the fake server, one per service:
// descarteslabs.workflows.WorkflowAPI, JobAPI, XYZAPI,
// descarteslabs.discover.v0alpha.AccessGrantApi and grpc.health.v1.Health.
// Every RPC, unary or streaming, takes one path: journal begin, auth policy,
// script decision, the decided Behavior (pass-through calls `core.backend`),
// journal end.
//
//   ServerCore core{backend, script, journal, clock, &shutdown};
//   auto services = MakeServiceAdapters(&core);
//   for (auto& service : services) builder.RegisterService(service.get());
std::vector<std::unique_ptr<grpc::Service>> MakeServiceAdapters(
    const ServerCore* core);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_SERVICE_ADAPTERS_H_
