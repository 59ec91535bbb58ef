// Happens-before edges across an RPC for ThreadSanitizer, at the points this
// project controls: the fake server's handlers and workflows::Client.
//
// Why: over TCP or TLS a response crosses a socket, and TSan cannot tell that
// the bytes a server thread sends are the ones a client thread receives, so
// what a handler did (a gMock failure it recorded, state it changed) looks
// unordered with the test code that runs once the client has the response.
// In-process calls are ordered by tools/tsan_grpc_annotations.cc; sockets
// are not.
//
// How: one process-wide key. The server releases on it after a handler's work
// and before each streamed message; the client acquires on it when a call
// returns or a message arrives. Coarser than per call: client code after ANY
// received response is ordered after every handler step that preceded it.
// Only the client acquires, so handlers stay unordered with one another
// (tools/tsan_grpc_canary.cc). Outside TSan builds both are no-ops.
//
// Example (what workflows::Client does after a unary call):
//   grpc::Status status = stub->GetJob(&context, request, &job);
//   workflows::tsan::ClientReceived();
#ifndef WORKFLOWS_TOOLS_TSAN_RPC_HANDOFF_H_
#define WORKFLOWS_TOOLS_TSAN_RPC_HANDOFF_H_

namespace workflows::tsan {

// Server side: what this thread did so far happens before what a client
// thread does after ClientReceived().
void ServerResponding();

// Client side: after a call returned or a streamed message arrived.
void ClientReceived();

}  // namespace workflows::tsan

#endif  // WORKFLOWS_TOOLS_TSAN_RPC_HANDOFF_H_
