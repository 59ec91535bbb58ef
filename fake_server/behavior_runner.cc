#include "fake_server/behavior_runner.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/journal.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/duration.pb.h"
#include "proto/rpc_status.pb.h"

namespace workflows {
namespace fake {
namespace {

// Codes 0 (OK) to 16 (UNAUTHENTICATED).
constexpr int kCodeCount =
    static_cast<int>(grpc::StatusCode::UNAUTHENTICATED) + 1;

absl::Duration ToAbslDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// How a call that ended while we waited ends: the client sees
// DEADLINE_EXCEEDED if its deadline passed (as the call context judges it,
// see CallContext::DeadlineExceeded), otherwise it cancelled (or the server
// is shutting down).
grpc::Status EndedWhileWaiting(CallContext* call, absl::string_view what) {
  if (call->DeadlineExceeded()) {
    return grpc::Status(
        grpc::StatusCode::DEADLINE_EXCEEDED,
        absl::StrCat("deadline exceeded while the fake server ", what));
  }
  return grpc::Status(
      grpc::StatusCode::CANCELLED,
      absl::StrCat("call cancelled while the fake server ", what));
}

// Waits `delay` of real time. Returns a status when the call must end now:
// the delay outlasts the deadline (answered at once: the client would see
// the same after waiting) or the call ended during the wait.
std::optional<grpc::Status> Wait(CallContext* call, absl::Duration delay,
                                 absl::string_view what) {
  if (delay <= absl::ZeroDuration()) return std::nullopt;
  const absl::Time deadline = call->deadline();
  if (deadline != absl::InfiniteFuture() && absl::Now() + delay >= deadline) {
    return grpc::Status(
        grpc::StatusCode::DEADLINE_EXCEEDED,
        absl::StrCat("deadline exceeded: the fake server's scripted ", what,
                     " of ", absl::FormatDuration(delay),
                     " outlasts the client's deadline"));
  }
  if (call->WaitUntilDone(delay)) {
    return EndedWhileWaiting(call, absl::StrCat("was in a scripted ", what));
  }
  return std::nullopt;
}

grpc::Status Hang(CallContext* call) {
  while (!call->WaitUntilDone(absl::Hours(1))) {
  }
  return EndedWhileWaiting(call, "was hanging (scripted)");
}

grpc::Status ExpireDeadline(CallContext* call) {
  const absl::Time deadline = call->deadline();
  const std::string sent =
      deadline == absl::InfiniteFuture()
          ? "no deadline"
          : absl::StrCat("a deadline ",
                         absl::FormatDuration(deadline - absl::Now()),
                         " from now");
  return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                      absl::StrCat("deadline exceeded (scripted "
                                   "expire_deadline; the client sent ",
                                   sent, ")"));
}

// Unpacks `any` into `message`, insisting on the exact type.
grpc::Status Unpack(const google::protobuf::Any& any,
                    google::protobuf::Message* message) {
  const std::string& expected = message->GetDescriptor()->full_name();
  const absl::string_view url = any.type_url();
  const absl::string_view actual = url.substr(url.rfind('/') + 1);
  if (actual != expected) {
    return grpc::Status(
        grpc::StatusCode::INTERNAL,
        absl::StrCat("fake server script error: payload of type \"", actual,
                     "\" where the method returns \"", expected, "\""));
  }
  if (!message->ParseFromString(any.value())) {
    return grpc::Status(
        grpc::StatusCode::INTERNAL,
        absl::StrCat("fake server script error: payload of type \"", expected,
                     "\" does not parse"));
  }
  return grpc::Status::OK;
}

void AddMetadata(
    const google::protobuf::RepeatedPtrField<MetadataEntry>& entries,
    CallContext* call, bool initial) {
  for (const MetadataEntry& entry : entries) {
    if (initial) {
      call->AddInitialMetadata(entry.key(), entry.value());
    } else {
      call->AddTrailingMetadata(entry.key(), entry.value());
    }
  }
}

grpc::Status ScriptError(absl::string_view message) {
  return grpc::Status(grpc::StatusCode::INTERNAL,
                      absl::StrCat("fake server script error: ", message));
}

// Resets the call (see CallContext::ResetCall). The status is what the
// journal records; the client sees only the reset.
grpc::Status Reset(CallContext* call, absl::string_view what) {
  call->ResetCall();
  return grpc::Status(
      grpc::StatusCode::CANCELLED,
      absl::StrCat("call reset by the fake server (scripted ", what, ")"));
}

// How a stream ends once its messages are sent (or at its cut).
grpc::Status EndStream(const StreamScript& script, CallContext* call) {
  switch (script.end_case()) {
    case StreamScript::kThenHang:
      if (script.then_hang()) return Hang(call);
      break;
    case StreamScript::kThenReset:
      if (script.then_reset()) return Reset(call, "then_reset");
      break;
    case StreamScript::kStatus:
    case StreamScript::END_NOT_SET:
      break;
  }
  return ToGrpcStatus(script.status());
}

// Sends a scripted stream's messages, then ends it.
grpc::Status RunScriptedStream(
    const StreamScript& script, CallContext* call,
    const google::protobuf::Message& response_prototype,
    const std::function<bool(const google::protobuf::Message&)>& write) {
  const absl::Duration per_message = ToAbslDuration(script.delay_per_message());
  std::unique_ptr<google::protobuf::Message> message(response_prototype.New());
  for (const google::protobuf::Any& any : script.messages()) {
    if (auto ended = Wait(call, per_message, "delay_per_message")) {
      return *ended;
    }
    message->Clear();
    grpc::Status unpacked = Unpack(any, message.get());
    if (!unpacked.ok()) return unpacked;
    if (!write(*message)) {
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          "stream broken while sending scripted messages");
    }
  }
  return EndStream(script, call);
}

// Passes a stream through to the backend, each message after the script's
// delay_per_message. With pass_through_messages = K > 0 the stream is cut
// after K messages and ends as the script says; otherwise (or if the backend
// ends first) the backend's status stands.
grpc::Status RunPassThroughStream(
    const StreamScript& script, CallContext* call,
    const std::function<bool(const google::protobuf::Message&)>& write,
    const std::function<grpc::Status(
        const std::function<bool(const google::protobuf::Message&)>&)>&
        pass_through) {
  const absl::Duration per_message = ToAbslDuration(script.delay_per_message());
  const uint32_t cut_after = script.pass_through_messages();  // 0: never
  uint32_t sent = 0;
  bool cut = false;
  std::optional<grpc::Status> ended;
  grpc::Status backend_status =
      pass_through([&](const google::protobuf::Message& message) {
        // A backend that keeps writing after a refused write gets nowhere.
        if (cut || ended.has_value()) return false;
        ended = Wait(call, per_message, "delay_per_message");
        if (ended.has_value()) return false;
        if (!write(message)) return false;
        if (++sent == cut_after) {
          cut = true;
          return false;
        }
        return true;
      });
  if (cut) return EndStream(script, call);
  if (ended.has_value()) return *ended;
  // The backend ended (or the client went away) before any cut.
  return backend_status;
}

}  // namespace

bool IsPlainPassThrough(const Behavior& behavior) {
  return (behavior.outcome_case() == Behavior::kPassThrough ||
          behavior.outcome_case() == Behavior::OUTCOME_NOT_SET) &&
         ToAbslDuration(behavior.delay()) <= absl::ZeroDuration() &&
         behavior.initial_metadata().empty() &&
         behavior.trailing_metadata().empty();
}

bool IsPassThroughStream(const StreamScript& script) {
  return script.pass_through() || script.pass_through_messages() > 0;
}

absl::StatusOr<grpc::StatusCode> ParseStatusCode(absl::string_view code) {
  if (code.empty()) return grpc::StatusCode::OK;
  int number = 0;
  if (absl::SimpleAtoi(code, &number)) {
    if (number >= 0 && number < kCodeCount) {
      return static_cast<grpc::StatusCode>(number);
    }
  } else {
    const std::string upper = absl::AsciiStrToUpper(code);
    for (int i = 0; i < kCodeCount; ++i) {
      const auto candidate = static_cast<grpc::StatusCode>(i);
      if (upper == StatusCodeName(candidate)) return candidate;
    }
  }
  std::vector<std::string> names;
  for (int i = 0; i < kCodeCount; ++i) {
    names.push_back(StatusCodeName(static_cast<grpc::StatusCode>(i)));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown status code \"", code, "\"; valid: ", absl::StrJoin(names, ", "),
      " or a number 0-16"));
}

grpc::Status ToGrpcStatus(const StatusSpec& spec) {
  absl::StatusOr<grpc::StatusCode> code = ParseStatusCode(spec.code());
  if (!code.ok()) {
    return grpc::Status(
        grpc::StatusCode::UNKNOWN,
        absl::StrCat("fake server script error: ", code.status().message(),
                     "; scripted message: ", spec.message()));
  }
  if (spec.details().empty()) return grpc::Status(*code, spec.message());
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(*code));
  rich.set_message(spec.message());
  *rich.mutable_details() = spec.details();
  return grpc::Status(*code, spec.message(), rich.SerializeAsString());
}

grpc::Status RunUnaryBehavior(
    const Behavior& behavior, CallContext* call,
    google::protobuf::Message* response,
    const std::function<grpc::Status()>& pass_through) {
  if (auto ended = Wait(call, ToAbslDuration(behavior.delay()), "delay")) {
    return *ended;
  }
  AddMetadata(behavior.initial_metadata(), call, /*initial=*/true);
  grpc::Status status;
  switch (behavior.outcome_case()) {
    case Behavior::kPassThrough:
    case Behavior::OUTCOME_NOT_SET:
      status = pass_through();
      break;
    case Behavior::kFail:
      response->Clear();
      status = ToGrpcStatus(behavior.fail());
      break;
    case Behavior::kHang:
      status = Hang(call);
      break;
    case Behavior::kExpireDeadline:
      status = ExpireDeadline(call);
      break;
    case Behavior::kReply:
      response->Clear();
      status = Unpack(behavior.reply(), response);
      break;
    case Behavior::kStream:
      status = ScriptError(absl::StrCat("a `stream` behaviour on unary method ",
                                        call->method()));
      break;
    case Behavior::kReset:
      response->Clear();
      status = Reset(call, "reset");
      break;
  }
  AddMetadata(behavior.trailing_metadata(), call, /*initial=*/false);
  return status;
}

grpc::Status RunStreamBehavior(
    const Behavior& behavior, CallContext* call,
    const google::protobuf::Message& response_prototype,
    const std::function<bool(const google::protobuf::Message&)>& write,
    const std::function<grpc::Status(
        const std::function<bool(const google::protobuf::Message&)>&)>&
        pass_through) {
  if (auto ended = Wait(call, ToAbslDuration(behavior.delay()), "delay")) {
    return *ended;
  }
  AddMetadata(behavior.initial_metadata(), call, /*initial=*/true);
  grpc::Status status;
  switch (behavior.outcome_case()) {
    case Behavior::kPassThrough:
    case Behavior::OUTCOME_NOT_SET:
      status = pass_through(write);
      break;
    case Behavior::kFail:
      status = ToGrpcStatus(behavior.fail());
      break;
    case Behavior::kHang:
      status = Hang(call);
      break;
    case Behavior::kExpireDeadline:
      status = ExpireDeadline(call);
      break;
    case Behavior::kReply:
      status = ScriptError(
          absl::StrCat("a `reply` behaviour on server-streaming method ",
                       call->method(), "; use `stream`"));
      break;
    case Behavior::kStream:
      status = IsPassThroughStream(behavior.stream())
                   ? RunPassThroughStream(behavior.stream(), call, write,
                                          pass_through)
                   : RunScriptedStream(behavior.stream(), call,
                                       response_prototype, write);
      break;
    case Behavior::kReset:
      status = Reset(call, "reset");
      break;
  }
  AddMetadata(behavior.trailing_metadata(), call, /*initial=*/false);
  return status;
}

}  // namespace fake
}  // namespace workflows
