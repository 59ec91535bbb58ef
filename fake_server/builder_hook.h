#ifndef WORKFLOWS_FAKE_SERVER_BUILDER_HOOK_H_
#define WORKFLOWS_FAKE_SERVER_BUILDER_HOOK_H_

#include <grpcpp/server_builder.h>

#include <functional>

namespace workflows {
namespace fake {

// Lets a program add services and interceptors to the grpc::ServerBuilder
// that FakeWorkflowsServer::Start() uses internally, without a hook in
// FakeServerOptions: it installs a process-wide grpc::ServerBuilderPlugin
// that calls `hook` from every ServerBuilder::BuildAndStart() in this process.
// Meant for the standalone binary, which runs exactly one server; libraries
// and tests running several servers must not use it.
//
//   SetServerBuilderHook([&](grpc::ServerBuilder& builder) {
//     builder.RegisterService(&control_service);
//   });
//   auto server = FakeWorkflowsServer::Start(options);
//   SetServerBuilderHook(nullptr);
//
// Thread-safe. `hook` runs on the thread calling BuildAndStart().
void SetServerBuilderHook(std::function<void(grpc::ServerBuilder&)> hook);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_BUILDER_HOOK_H_
