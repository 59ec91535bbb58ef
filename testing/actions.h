#ifndef WORKFLOWS_TESTING_ACTIONS_H_
#define WORKFLOWS_TESTING_ACTIONS_H_

// gMock actions for MockWorkflowsBackend methods: what the fake server answers.
// They compose like gMock's own (and accept gMock's own as inner actions):
//
//   EXPECT_CALL(backend, GetJob)
//       .WillOnce(FailTimesThen(2, ReturnStatus(grpc::StatusCode::UNAVAILABLE),
//                               Reply(job)));
//   EXPECT_CALL(backend, CreateJob)
//       .WillOnce(ReturnWithTrailers({{"grpc-retry-pushback-ms", "250"}},
//                                    ReturnStatus(RESOURCE_EXHAUSTED, "429")));
//   EXPECT_CALL(backend, WatchJob)
//       .WillOnce(StreamThenFail(states, ReturnStatus(UNAVAILABLE, "reset")));
//   EXPECT_CALL(backend, GetWorkflow).WillOnce(HangUntilDeadline());
//   // Fail twice, then answer as the in-memory backend would (in a
//   // WorkflowsTest, PassThrough() needs no argument):
//   EXPECT_CALL(backend, GetJob)
//       .WillRepeatedly(FailTimesThen(
//           2, ReturnStatus(grpc::StatusCode::UNAVAILABLE), PassThrough()));
//
// gMock's ::testing::DoDefault() works only as a whole action
// (.WillOnce(DoDefault())); inside the actions here it does not compile
// (gMock would abort at run time). Use PassThrough() there.
//
// Every mock method takes (CallContext* call, const Request& request, X* out)
// where X is the response (unary) or a ServerStream<Response>.

#include <grpcpp/support/status.h>

#include <atomic>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/backend.h"
#include "fake_server/call_context.h"
#include "gmock/gmock.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "proto/rpc_status.pb.h"

namespace workflows {
namespace testing {

// Metadata as (key, value) pairs; keys may repeat.
using MetadataList = std::vector<std::pair<std::string, std::string>>;

namespace actions_internal {

// Whether `Inner` can be performed inside another action. gMock performs
// DoDefault() only as a mock method's whole action and aborts the test when
// it is nested; refuse it at compile time instead.
template <typename Inner>
inline constexpr bool kComposable =
    !std::is_same<std::decay_t<Inner>,
                  std::decay_t<decltype(::testing::DoDefault())>>::value;

template <typename Inner>
constexpr void CheckComposable() {
  static_assert(kComposable<Inner>,
                "::testing::DoDefault() cannot be nested in FailTimesThen, "
                "Delay, ReturnWithTrailers, WithInitialMetadata, WithWarnings "
                "or StreamThen (gMock performs it only as a whole action). "
                "Use PassThrough() to answer as the in-memory backend does.");
}

// Performs `inner` (a gMock action or any callable) with the mock's arguments.
template <typename Inner, typename... Args>
grpc::Status Perform(const Inner& inner, Args&&... args) {
  ::testing::Action<grpc::Status(Args...)> action = inner;
  return action.Perform(std::forward_as_tuple(std::forward<Args>(args)...));
}

// The status of a call that ended while the server was still working on it
// (fake::CallContext::DeadlineExceeded tells a deadline from a cancel).
inline grpc::Status DoneStatus(fake::CallContext* call) {
  if (call->DeadlineExceeded()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "deadline exceeded while the server was working");
  }
  return grpc::Status(grpc::StatusCode::CANCELLED, "call cancelled");
}

template <typename Inner>
class WithMetadataAction {
 public:
  WithMetadataAction(MetadataList metadata, bool initial, Inner inner)
      : metadata_(std::move(metadata)), initial_(initial), inner_(inner) {
    CheckComposable<Inner>();
  }

  template <typename... Rest>
  grpc::Status operator()(fake::CallContext* call, Rest&&... rest) const {
    for (const auto& [key, value] : metadata_) {
      if (initial_) {
        call->AddInitialMetadata(key, value);
      } else {
        call->AddTrailingMetadata(key, value);
      }
    }
    return Perform(inner_, call, std::forward<Rest>(rest)...);
  }

 private:
  MetadataList metadata_;
  bool initial_;
  Inner inner_;
};

template <typename Inner>
class DelayAction {
 public:
  DelayAction(absl::Duration delay, Inner inner)
      : delay_(delay), inner_(inner) {
    CheckComposable<Inner>();
  }

  template <typename... Rest>
  grpc::Status operator()(fake::CallContext* call, Rest&&... rest) const {
    // A delay the client will not wait for ends the call as the client would
    // see it, at once: slow-server tests take no real time.
    if (absl::Now() + delay_ >= call->deadline()) {
      return grpc::Status(
          grpc::StatusCode::DEADLINE_EXCEEDED,
          absl::StrCat("scripted delay of ", absl::FormatDuration(delay_),
                       " outlasts the client's deadline"));
    }
    if (call->WaitUntilDone(delay_)) return DoneStatus(call);
    return Perform(inner_, call, std::forward<Rest>(rest)...);
  }

 private:
  absl::Duration delay_;
  Inner inner_;
};

template <typename FailAction, typename ThenAction>
class FailTimesThenAction {
 public:
  FailTimesThenAction(int times, FailAction fail, ThenAction then)
      : times_(times),
        calls_(std::make_shared<std::atomic<int>>(0)),
        fail_(fail),
        then_(then) {
    CheckComposable<FailAction>();
    CheckComposable<ThenAction>();
  }

  template <typename... Args>
  grpc::Status operator()(Args&&... args) const {
    if (calls_->fetch_add(1) < times_) {
      return Perform(fail_, std::forward<Args>(args)...);
    }
    return Perform(then_, std::forward<Args>(args)...);
  }

 private:
  int times_;
  std::shared_ptr<std::atomic<int>> calls_;  // Shared by copies of the action.
  FailAction fail_;
  ThenAction then_;
};

template <typename Message, typename Inner>
class StreamAction {
 public:
  StreamAction(std::vector<Message> messages, Inner then)
      : messages_(std::move(messages)), then_(then) {
    CheckComposable<Inner>();
  }

  template <typename Request, typename StreamMessage>
  grpc::Status operator()(fake::CallContext* call, const Request& request,
                          fake::ServerStream<StreamMessage>* stream) const {
    static_assert(std::is_same<Message, StreamMessage>::value,
                  "StreamMessages(): message type differs from the method's "
                  "response type");
    for (const Message& message : messages_) {
      if (!stream->Write(message)) return DoneStatus(call);
    }
    return Perform(then_, call, request, stream);
  }

 private:
  std::vector<Message> messages_;
  Inner then_;
};

template <typename Message>
class ReplyAction {
 public:
  explicit ReplyAction(Message message) : message_(std::move(message)) {}

  template <typename Request, typename Response>
  grpc::Status operator()(fake::CallContext*, const Request&,
                          Response* response) const {
    static_assert(std::is_same<Message, Response>::value,
                  "Reply(): message type differs from the method's response "
                  "type");
    *response = message_;
    return grpc::Status::OK;
  }

 private:
  Message message_;
};

class ReplyTextAction {
 public:
  explicit ReplyTextAction(std::string textproto)
      : textproto_(std::move(textproto)) {}

  template <typename Request, typename Response>
  grpc::Status operator()(fake::CallContext*, const Request&,
                          Response* response) const {
    if (!google::protobuf::TextFormat::ParseFromString(textproto_, response)) {
      ADD_FAILURE() << "ReplyText(): cannot parse as "
                    << Response::descriptor()->full_name() << ": "
                    << textproto_;
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          "test bug: unparsable ReplyText()");
    }
    return grpc::Status::OK;
  }

 private:
  std::string textproto_;
};

// Backend::Method for each (request, response or stream) pair: PassThrough
// finds the method from the mock method's argument types.
#define WORKFLOWS_FORWARD_TO_BACKEND(Method, Request, Out)                 \
  inline grpc::Status ForwardToBackend(fake::Backend& backend,             \
                                       fake::CallContext* call,            \
                                       const Request& request, Out* out) { \
    return backend.Method(call, request, out);                             \
  }
#define WORKFLOWS_WF ::descarteslabs::workflows
#define WORKFLOWS_AG ::descarteslabs::discover::v0alpha
WORKFLOWS_FORWARD_TO_BACKEND(UpsertWorkflow,
                             WORKFLOWS_WF::UpsertWorkflowRequest,
                             WORKFLOWS_WF::Workflow)
WORKFLOWS_FORWARD_TO_BACKEND(GetWorkflow, WORKFLOWS_WF::GetWorkflowRequest,
                             WORKFLOWS_WF::Workflow)
WORKFLOWS_FORWARD_TO_BACKEND(GetVersion, WORKFLOWS_WF::GetVersionRequest,
                             WORKFLOWS_WF::VersionedGraft)
WORKFLOWS_FORWARD_TO_BACKEND(SearchWorkflows,
                             WORKFLOWS_WF::SearchWorkflowsRequest,
                             fake::ServerStream<WORKFLOWS_WF::Workflow>)
WORKFLOWS_FORWARD_TO_BACKEND(DeleteWorkflow,
                             WORKFLOWS_WF::DeleteWorkflowRequest,
                             WORKFLOWS_WF::Empty)
WORKFLOWS_FORWARD_TO_BACKEND(GetWmtsUrlTemplate, WORKFLOWS_WF::Empty,
                             WORKFLOWS_WF::WmtsUrlTemplateResponse)
WORKFLOWS_FORWARD_TO_BACKEND(CreateJob, WORKFLOWS_WF::CreateJobRequest,
                             WORKFLOWS_WF::Job)
WORKFLOWS_FORWARD_TO_BACKEND(ListJobs, WORKFLOWS_WF::ListJobsRequest,
                             fake::ServerStream<WORKFLOWS_WF::Job>)
WORKFLOWS_FORWARD_TO_BACKEND(GetJob, WORKFLOWS_WF::GetJobRequest,
                             WORKFLOWS_WF::Job)
WORKFLOWS_FORWARD_TO_BACKEND(CancelJob, WORKFLOWS_WF::CancelJobRequest,
                             WORKFLOWS_WF::CancelJobResponse)
WORKFLOWS_FORWARD_TO_BACKEND(WatchJob, WORKFLOWS_WF::WatchJobRequest,
                             fake::ServerStream<WORKFLOWS_WF::Job::State>)
WORKFLOWS_FORWARD_TO_BACKEND(CreateXYZ, WORKFLOWS_WF::CreateXYZRequest,
                             WORKFLOWS_WF::XYZ)
WORKFLOWS_FORWARD_TO_BACKEND(GetXYZ, WORKFLOWS_WF::GetXYZRequest,
                             WORKFLOWS_WF::XYZ)
WORKFLOWS_FORWARD_TO_BACKEND(ListXYZ, WORKFLOWS_WF::ListXYZRequest,
                             fake::ServerStream<WORKFLOWS_WF::XYZ>)
WORKFLOWS_FORWARD_TO_BACKEND(DeleteXYZ, WORKFLOWS_WF::DeleteXYZRequest,
                             ::google::protobuf::Empty)
WORKFLOWS_FORWARD_TO_BACKEND(GetXYZSessionLogs,
                             WORKFLOWS_WF::GetXYZSessionLogsRequest,
                             fake::ServerStream<WORKFLOWS_WF::XYZLogRecord>)
WORKFLOWS_FORWARD_TO_BACKEND(CreateAccessGrant,
                             WORKFLOWS_AG::CreateAccessGrantRequest,
                             WORKFLOWS_AG::CreateAccessGrantResponse)
WORKFLOWS_FORWARD_TO_BACKEND(DeleteAccessGrant,
                             WORKFLOWS_AG::DeleteAccessGrantRequest,
                             WORKFLOWS_AG::DeleteAccessGrantResponse)
WORKFLOWS_FORWARD_TO_BACKEND(ListAccessGrants,
                             WORKFLOWS_AG::ListAccessGrantsRequest,
                             WORKFLOWS_AG::ListAccessGrantsResponse)
WORKFLOWS_FORWARD_TO_BACKEND(
    ListAccessGrantsStream, WORKFLOWS_AG::ListAccessGrantsStreamRequest,
    fake::ServerStream<WORKFLOWS_AG::ListAccessGrantsStreamResponse>)
WORKFLOWS_FORWARD_TO_BACKEND(ReplaceAccessGrant,
                             WORKFLOWS_AG::ReplaceAccessGrantRequest,
                             WORKFLOWS_AG::ReplaceAccessGrantResponse)
WORKFLOWS_FORWARD_TO_BACKEND(Check, ::grpc::health::v1::HealthCheckRequest,
                             ::grpc::health::v1::HealthCheckResponse)
WORKFLOWS_FORWARD_TO_BACKEND(
    Watch, ::grpc::health::v1::HealthCheckRequest,
    fake::ServerStream<::grpc::health::v1::HealthCheckResponse>)
#undef WORKFLOWS_AG
#undef WORKFLOWS_WF
#undef WORKFLOWS_FORWARD_TO_BACKEND

class PassThroughAction {
 public:
  explicit PassThroughAction(std::shared_ptr<fake::Backend> target)
      : target_(std::move(target)) {}

  template <typename Request, typename Out>
  grpc::Status operator()(fake::CallContext* call, const Request& request,
                          Out* out) const {
    return ForwardToBackend(*target_, call, request, out);
  }

 private:
  std::shared_ptr<fake::Backend> target_;
};

}  // namespace actions_internal

// Ends the call with `code` and `message`.
inline auto ReturnStatus(grpc::StatusCode code, std::string message = "") {
  return ::testing::Return(grpc::Status(code, std::move(message)));
}

// Ends the call with `code`, `message` and a google.rpc.Status carrying
// `details` (any protobuf messages) in grpc-status-details-bin.
template <typename... Details>
auto ReturnWithDetails(grpc::StatusCode code, std::string message,
                       const Details&... details) {
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(code));
  rich.set_message(message);
  (rich.add_details()->PackFrom(details), ...);
  return ::testing::Return(
      grpc::Status(code, std::move(message), rich.SerializeAsString()));
}

// Adds trailing metadata (e.g. retry-after, grpc-retry-pushback-ms), then
// performs `inner`.
template <typename Inner>
auto ReturnWithTrailers(MetadataList trailers, Inner inner) {
  return actions_internal::WithMetadataAction<Inner>(std::move(trailers),
                                                     /*initial=*/false, inner);
}
inline auto ReturnWithTrailers(MetadataList trailers, grpc::StatusCode code,
                               std::string message = "") {
  return ReturnWithTrailers(std::move(trailers),
                            ReturnStatus(code, std::move(message)));
}

// Adds initial metadata (e.g. x-wf-warnings), then performs `inner`.
template <typename Inner>
auto WithInitialMetadata(MetadataList metadata, Inner inner) {
  return actions_internal::WithMetadataAction<Inner>(std::move(metadata),
                                                     /*initial=*/true, inner);
}

// Sends each of `warnings` as an x-wf-warnings header, then performs `inner`.
template <typename Inner>
auto WithWarnings(const std::vector<std::string>& warnings, Inner inner) {
  MetadataList metadata;
  for (const std::string& warning : warnings) {
    metadata.emplace_back("x-wf-warnings", warning);
  }
  return WithInitialMetadata(std::move(metadata), inner);
}

// Answers a unary call with `message` and OK.
template <typename Message>
auto Reply(Message message) {
  return actions_internal::ReplyAction<Message>(std::move(message));
}

// Answers a unary call with the response parsed from `textproto`.
inline auto ReplyText(std::string textproto) {
  return actions_internal::ReplyTextAction(std::move(textproto));
}

// Waits `delay` (real time), then performs `inner`. If the client's deadline
// comes first, the call ends DEADLINE_EXCEEDED at once, as the client would
// see it after waiting; a cancelled call ends CANCELLED.
template <typename Inner>
auto Delay(absl::Duration delay, Inner inner) {
  return actions_internal::DelayAction<Inner>(delay, inner);
}

// Never answers: the call ends when the client's deadline passes
// (DEADLINE_EXCEEDED), it cancels (CANCELLED) or the server shuts down.
inline auto HangUntilDeadline() {
  return [](fake::CallContext* call, const auto&, auto*) {
    call->WaitUntilDone(absl::InfiniteDuration());
    return actions_internal::DoneStatus(call);
  };
}

// Answers DEADLINE_EXCEEDED at once. The journal still holds the deadline the
// client sent, so a 5 s or 24 h timeout is checked without waiting for it.
inline auto ExpireDeadline() {
  return ReturnStatus(grpc::StatusCode::DEADLINE_EXCEEDED,
                      "deadline exceeded (scripted)");
}

// Performs `fail` for the first `times` calls, then `then` for every later
// call. Copies of the action share the count.
template <typename FailAction, typename ThenAction>
auto FailTimesThen(int times, FailAction fail, ThenAction then) {
  return actions_internal::FailTimesThenAction<FailAction, ThenAction>(
      times, fail, then);
}
template <typename ThenAction>
auto FailTimesThen(int times, grpc::Status status, ThenAction then) {
  return FailTimesThen(times, ::testing::Return(std::move(status)), then);
}

// Answers the call as `target` does, typically the server's InMemoryBackend:
// the action for "then behave normally". Unlike ::testing::DoDefault() it
// composes with the actions here and with gMock's (DoAll, ...):
//
//   EXPECT_CALL(*mock, GetJob)
//       .WillRepeatedly(FailTimesThen(
//           2, ReturnStatus(grpc::StatusCode::UNAVAILABLE),
//           PassThrough(server.in_memory_backend())));
//
// In a WorkflowsTest, PassThrough() without an argument forwards to the
// fixture's in-memory backend. `target` must outlive the calls (the
// shared_ptr overload keeps it alive).
inline auto PassThrough(std::shared_ptr<fake::Backend> target) {
  return actions_internal::PassThroughAction(std::move(target));
}
inline auto PassThrough(fake::Backend* target) {
  return PassThrough(std::shared_ptr<fake::Backend>(
      std::shared_ptr<fake::Backend>(), target));  // Not owned.
}

// Server streams: writes `messages` in order, then ends OK.
template <typename Message>
auto StreamMessages(std::vector<Message> messages) {
  return actions_internal::StreamAction<Message, decltype(ReturnStatus(
                                                     grpc::StatusCode::OK))>(
      std::move(messages), ReturnStatus(grpc::StatusCode::OK));
}

// Server streams: writes `messages`, then ends with `status` (a stream that
// fails half-way).
template <typename Message>
auto StreamThenFail(std::vector<Message> messages, grpc::Status status) {
  auto end = ::testing::Return(std::move(status));
  return actions_internal::StreamAction<Message, decltype(end)>(
      std::move(messages), end);
}
template <typename Message, typename Inner>
auto StreamThen(std::vector<Message> messages, Inner then) {
  return actions_internal::StreamAction<Message, Inner>(std::move(messages),
                                                        then);
}

}  // namespace testing
}  // namespace workflows

#endif  // WORKFLOWS_TESTING_ACTIONS_H_
