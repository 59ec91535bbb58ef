#ifndef WORKFLOWS_FAKE_SERVER_BEHAVIOR_RUNNER_H_
#define WORKFLOWS_FAKE_SERVER_BEHAVIOR_RUNNER_H_

// CONTRACT (written by the lead; implementation in behavior_runner.cc).

#include <functional>

#include "fake_server/call_context.h"
#include "fake_server/scenario.pb.h"
#include "google/protobuf/message.h"
#include <grpcpp/support/status.h>

namespace workflows {
namespace fake {

// Converts a StatusSpec to a grpc::Status, packing details into a
// google.rpc.Status for grpc-status-details-bin.
grpc::Status ToGrpcStatus(const StatusSpec& spec);

// Runs `behavior` for a unary call: delay, initial metadata, then the
// outcome. `pass_through` calls the backend and fills `response`. Trailing
// metadata is added to `call` before returning.
//
// Delays wait in real time and end early when the call is done. A delay that
// would outlast the client's deadline answers DEADLINE_EXCEEDED at once
// instead: the client sees exactly what it would after waiting, so a "slow
// server" test against a 5 s default timeout finishes in milliseconds.
grpc::Status RunUnaryBehavior(const Behavior& behavior, CallContext* call,
                              google::protobuf::Message* response,
                              const std::function<grpc::Status()>& pass_through);

// Runs `behavior` for a server-streaming call. `write` sends one message of
// the method's response type (`response_prototype` gives the type for
// unpacking Any payloads) and returns false when the stream is broken.
// `pass_through(write_filter)` runs the backend, sending each message through
// `write_filter`, which may stop the backend early by returning false.
grpc::Status RunStreamBehavior(
    const Behavior& behavior, CallContext* call,
    const google::protobuf::Message& response_prototype,
    const std::function<bool(const google::protobuf::Message&)>& write,
    const std::function<grpc::Status(
        const std::function<bool(const google::protobuf::Message&)>&)>&
        pass_through);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_BEHAVIOR_RUNNER_H_
