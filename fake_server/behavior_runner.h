#ifndef WORKFLOWS_FAKE_SERVER_BEHAVIOR_RUNNER_H_
#define WORKFLOWS_FAKE_SERVER_BEHAVIOR_RUNNER_H_

#include <grpcpp/support/status.h>

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fake_server/call_context.h"
#include "fake_server/scenario.pb.h"
#include "google/protobuf/message.h"

namespace workflows {
namespace fake {

// Parses a StatusSpec code: a name ("UNAVAILABLE", any case) or a number
// 0-16. "" is OK (proto3's default). Anything else is INVALID_ARGUMENT
// listing the valid names.
absl::StatusOr<grpc::StatusCode> ParseStatusCode(absl::string_view code);

// Converts a StatusSpec to a grpc::Status, packing details into a
// google.rpc.Status for grpc-status-details-bin (only when there are
// details). An invalid code (unvalidated input) becomes UNKNOWN with a message
// saying so; Script and the scenario loader reject such specs up front.
//
//   StatusSpec spec;
//   spec.set_code("RESOURCE_EXHAUSTED");
//   spec.add_details()->PackFrom(retry_info);
//   grpc::Status status = ToGrpcStatus(spec);  // error_details() = rpc.Status
grpc::Status ToGrpcStatus(const StatusSpec& spec);

// True if `script` passes the backend's stream through (`pass_through`, or
// `pass_through_messages` > 0) rather than sending its own `messages`.
bool IsPassThroughStream(const StreamScript& script);

// Runs `behavior` for a unary call: delay, initial metadata, then the
// outcome. `pass_through` calls the backend and fills `response`. Trailing
// metadata is added to `call` before returning. A Behavior with no outcome
// set passes through (so `delay { seconds: 1 }` alone means "slow backend").
//
// `hang` waits until the call is done and ends DEADLINE_EXCEEDED if the
// deadline has passed (CallContext::DeadlineExceeded), else CANCELLED (client
// cancel or server shutdown). Waiting costs no polling (see
// CallContext::WaitUntilDone).
// `reset` calls CallContext::ResetCall() and ends CANCELLED.
// `fail` with OK ends the call OK with an empty response. A `reply` of the
// wrong type or a `stream` outcome (unvalidated input) ends INTERNAL.
//
// Delays wait in real time and end early when the call is done. A delay that
// would outlast the client's deadline answers DEADLINE_EXCEEDED at once
// instead: the client sees exactly what it would after waiting, so a "slow
// server" test against a 5 s default timeout finishes in milliseconds.
grpc::Status RunUnaryBehavior(
    const Behavior& behavior, CallContext* call,
    google::protobuf::Message* response,
    const std::function<grpc::Status()>& pass_through);

// True if `behavior` does nothing but pass the call through (no delay, no
// metadata): what unscripted calls get. RunUnaryBehavior would then only call
// `pass_through`, so the server calls the backend directly.
bool IsPlainPassThrough(const Behavior& behavior);

// Runs `behavior` for a server-streaming call. Delays, `hang`,
// `expire_deadline`, `reset` and `fail` work as for unary calls; `stream`
// sends its messages (each after `delay_per_message`, cut short when the call
// is done) and ends as its `end` says (status, then_hang, then_reset), or
// passes the backend's stream through (see IsPassThroughStream), each message
// after `delay_per_message`, cut after `pass_through_messages` if set and
// then ended as `end` says. A failed write ends the stream CANCELLED.
// `reply` (unvalidated input) ends INTERNAL.
//
// `write` sends one message of the method's response type (`response_prototype`
// gives the type for unpacking Any payloads) and returns false when the stream
// is broken. `pass_through(write_filter)` runs the backend, sending each
// message through `write_filter`, which may stop the backend early by returning
// false.
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
