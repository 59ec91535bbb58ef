#include "fake_server/service_adapters.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/method_handler.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/slice.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/warning_sink.h"
#include "fake_server/behavior_runner.h"
#include "fake_server/session.h"

namespace workflows {
namespace fake {
namespace {

using ::google::protobuf::Message;

std::string FirstProperty(const grpc::AuthContext& auth, const char* property) {
  std::vector<grpc::string_ref> values = auth.FindPropertyValues(property);
  if (values.empty()) return "";
  return std::string(values.front().data(), values.front().size());
}

bool HasBearerToken(const std::multimap<std::string, std::string>& metadata) {
  auto it = metadata.find("authorization");
  return it != metadata.end() &&
         absl::StartsWithIgnoreCase(it->second, "bearer ");
}

// A copy of the whole payload of a received message, as one slice. A copy,
// because the received slices may be views into a larger read buffer that
// the journal must not keep alive; a short message is copied inline.
grpc::Slice CopyPayload(const grpc::ByteBuffer& buffer) {
  if (!buffer.Valid()) return grpc::Slice();
  grpc::Slice single;
  // A small message arrives as one slice (always, in-process): copy it
  // without building Dump's vector.
  if (buffer.TrySingleSlice(&single).ok()) {
    return grpc::Slice(single.begin(), single.size());
  }
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return grpc::Slice();
  std::string bytes;
  bytes.reserve(buffer.Length());
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return grpc::Slice(bytes.data(), bytes.size());
}

// The transport's view of the caller (TLS names, security type), without
// has_bearer_token.
std::shared_ptr<const CallerIdentity> TransportIdentityOf(
    grpc::ServerContext& context) {
  auto identity = std::make_shared<CallerIdentity>();
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr) {
    identity->set_transport_security_type(
        FirstProperty(*auth, GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME));
    identity->set_x509_common_name(
        FirstProperty(*auth, GRPC_X509_CN_PROPERTY_NAME));
    for (const grpc::string_ref& san :
         auth->FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
      identity->add_x509_subject_alternative_names(
          std::string(san.data(), san.size()));
    }
  }
  return identity;
}

// A request as it arrived, and its type.
struct ReceivedBytes {
  const grpc::ByteBuffer* buffer;
  const google::protobuf::Descriptor* type;
};

// Records what the client sent, as it arrives. Only runs when the journal is
// recording. The metadata is handed over when the call ends (see HandleCall).
void RecordArrival(const ServerCore& core, ServerCallContext& call,
                   const Message& request, const ReceivedBytes* request_bytes,
                   Journal::ActiveCall& entry) {
  if (request_bytes != nullptr) {
    entry.AddRequestBytes(request_bytes->type,
                          CopyPayload(*request_bytes->buffer));
  } else {
    entry.AddRequest(request);
  }
  if (call.has_deadline()) {
    entry.SetDeadlineRemaining(call.deadline() - absl::Now());
  }
  const bool has_bearer = HasBearerToken(call.request_metadata());
  if (core.fixed_transport_identity) {
    // Every call of this server arrives over the same in-process transport:
    // ask gRPC once, not per call (each answer allocates; the peer string
    // and the AuthContext were a measurable part of the per-call cost).
    std::call_once(core.identity_once, [&] {
      core.transport_peer = std::make_shared<const std::string>(call.peer());
      core.transport_identity = TransportIdentityOf(*call.server_context());
    });
    entry.SetPeer(core.transport_peer);
    entry.SetIdentity(core.transport_identity, has_bearer);
  } else {
    entry.SetPeer(std::make_shared<const std::string>(call.peer()));
    entry.SetIdentity(TransportIdentityOf(*call.server_context()), has_bearer);
  }
}

// RESOURCE_EXHAUSTED for a request over the fake's own size limit, which it
// enforces itself (gRPC's receive limit is set a margin above it) so that
// such calls are journaled.
grpc::Status CheckRequestSize(const ServerCore& core, size_t bytes) {
  if (bytes <= core.max_request_bytes) return grpc::Status::OK;
  return grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED,
      absl::StrCat("request of ", bytes,
                   " bytes is larger than the fake server's limit of ",
                   core.max_request_bytes,
                   " bytes (--max_receive_message_bytes)"));
}

// Parses a request received as bytes, as gRPC's generated handlers would,
// after the fake's own size check. Not OK (RESOURCE_EXHAUSTED over the size
// limit, INTERNAL for a body that does not parse, as gRPC answers) means the
// call is journaled with that status and goes no further.
grpc::Status ParseRequest(const ServerCore& core,
                          const grpc::ByteBuffer& buffer,
                          const google::protobuf::Descriptor* type,
                          Message* request) {
  grpc::Status rejected = CheckRequestSize(core, buffer.Length());
  if (!rejected.ok()) return rejected;
  // Reads the buffer without consuming it; the journal may copy it next.
  grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(&buffer));
  if (!reader.status().ok()) return reader.status();
  if (!request->ParseFromZeroCopyStream(&reader)) {
    return grpc::Status(
        grpc::StatusCode::INTERNAL,
        absl::StrCat("the fake server cannot parse the request as a ",
                     type->full_name()));
  }
  return grpc::Status::OK;
}

// A call that ended because the server is going away tells the client so
// with UNAVAILABLE (retryable, as a draining real server would), rather than
// the CANCELLED a waiting behaviour reports; one whose client's deadline
// passed stays DEADLINE_EXCEEDED, as its client saw.
grpc::Status AdjustForShutdown(const ServerCallContext& call,
                               grpc::Status status) {
  if (call.shutting_down() &&
      (status.error_code() == grpc::StatusCode::CANCELLED ||
       status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) &&
      !call.DeadlineExceeded()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the fake Workflows server is shutting down");
  }
  return status;
}

// Longest status message sent: gRPC carries it as the grpc-message trailer,
// and clients refuse metadata over 8 KiB by default, so a message echoing a
// request field (a NOT_FOUND naming a 3 MB id) would reach them as an
// unrelated RESOURCE_EXHAUSTED. The cut keeps the start and says how long the
// message was.
constexpr size_t kMaxStatusMessageBytes = 4096;

grpc::Status BoundStatusMessage(grpc::Status status) {
  if (status.error_message().size() <= kMaxStatusMessageBytes) return status;
  return grpc::Status(status.error_code(),
                      absl::StrCat(absl::string_view(status.error_message())
                                       .substr(0, kMaxStatusMessageBytes),
                                   "... (message cut from ",
                                   status.error_message().size(), " bytes)"),
                      status.error_details());
}

// The steps shared by unary and streaming calls: journal begin, auth,
// decision, `run` (which executes the behaviour), journal end.
// `request_bytes`, when given, is `request` as received, which the journal
// copies instead of serializing `request` again. `rejected`, when given, is
// how a request the fake refuses to handle (unparsable, over its size limit)
// ends: journaled like any call, without auth, decision or `run`.
template <typename Run>
grpc::Status HandleCall(const ServerCore& core, absl::string_view method,
                        grpc::ServerContext* context, const Message& request,
                        const ReceivedBytes* request_bytes, const Run& run,
                        const grpc::Status* rejected = nullptr) {
  ServerCallContext call(context, method, core.clock, core.shutdown);
  // The session is recorded even when no session rules exist, so that a
  // test can read its own calls from a shared journal; the lookup is one
  // map find and allocates nothing for untagged calls.
  Journal::ActiveCall entry = core.journal->Begin(
      method, core.clock->Now(), SessionOf(call.request_metadata()));
  if (!entry.admitted()) {
    // One session too many (JournalOptions::max_sessions).
    const grpc::Status refused = entry.refusal();
    core.journal->End(entry, refused);
    return refused;
  }
  Journal::ActiveCall* record = entry.recording() ? &entry : nullptr;
  if (record != nullptr) {
    RecordArrival(core, call, request, request_bytes, entry);
  }

  grpc::Status status;
  if (rejected != nullptr) {
    status = *rejected;
  } else {
    const CallView view{method, &request, &call.request_metadata()};
    // A call the auth policy refuses runs the refusal as its behaviour, so
    // it gets the same metadata handling and journaling as a scripted
    // failure.
    const Decision decision = core.script->DecideCall(view);
    if (record != nullptr) record->SetRule(decision.rule_name);
    status = run(decision.behavior, call, record);
    status = AdjustForShutdown(call, std::move(status));
  }
  status = BoundStatusMessage(std::move(status));
  // The behaviour is done with the metadata; the journal keeps it.
  if (record != nullptr) {
    record->SetRequestMetadata(call.ReleaseRequestMetadata());
  }
  core.journal->End(entry, status);
  return status;
}

template <typename Request, typename Response>
using UnaryMethod = grpc::Status (Backend::*)(CallContext*, const Request&,
                                              Response*);
template <typename Request, typename Response>
using StreamMethod = grpc::Status (Backend::*)(CallContext*, const Request&,
                                               ServerStream<Response>*);

// A unary RPC over raw bytes. The fake parses the request and serializes the
// response itself (into one slice, as gRPC's generated handlers do for short
// messages), so that the journal can keep the bytes that cross the wire:
// recording a call costs one copy of the request and a reference to the
// response, instead of two more serializations (bench/instructions.sh).
template <typename Request, typename Response>
grpc::Status Unary(const ServerCore* core, const char* method,
                   grpc::ServerContext* context,
                   const grpc::ByteBuffer& request_buffer,
                   grpc::ByteBuffer* response_buffer,
                   UnaryMethod<Request, Response> backend_method) {
  // Looked up once: a message's descriptor() checks a once_flag and
  // indexes protobuf's metadata tables on every call.
  static const google::protobuf::Descriptor* const request_type =
      Request::descriptor();
  static const google::protobuf::Descriptor* const response_type =
      Response::descriptor();
  const ReceivedBytes received{&request_buffer, request_type};
  Request request;
  const grpc::Status rejected =
      ParseRequest(*core, request_buffer, request_type, &request);
  if (!rejected.ok()) {
    // Journaled with the status the client gets (payload truncated as any).
    return HandleCall(
        *core, method, context, request, &received,
        [](const Behavior&, ServerCallContext&, Journal::ActiveCall*) {
          return grpc::Status::OK;
        },
        &rejected);
  }
  Response response;
  return HandleCall(
      *core, method, context, request, &received,
      [&](const Behavior& behavior, ServerCallContext& call,
          Journal::ActiveCall* record) {
        auto call_backend = [&] {
          return (core->backend->*backend_method)(&call, request, &response);
        };
        grpc::Status status =
            IsPlainPassThrough(behavior)
                ? call_backend()
                : RunUnaryBehavior(behavior, &call, &response, call_backend);
        if (!status.ok()) return status;
        grpc::Slice wire(response.ByteSizeLong());
        uint8_t* begin = const_cast<uint8_t*>(wire.begin());
        if (response.SerializeWithCachedSizesToArray(begin) !=
            begin + wire.size()) {
          return grpc::Status(
              grpc::StatusCode::INTERNAL,
              absl::StrCat("fake server: cannot serialize the ",
                           response_type->full_name(), " of ", method));
        }
        // The journal keeps a reference to the bytes sent, not a copy.
        if (record != nullptr) {
          record->AddResponseBytes(response_type, wire);
        }
        // Swapped in, not assigned: assignment would copy the buffer.
        grpc::ByteBuffer wire_buffer(&wire, 1);
        response_buffer->Swap(&wire_buffer);
        return status;
      });
}

// Sends the stream's messages to the client, recording each one sent.
template <typename Response>
class ClientStream {
 public:
  ClientStream(grpc::ServerWriter<Response>* writer, ServerCallContext* call,
               Journal::ActiveCall* record)
      : writer_(writer), call_(call), record_(record) {}

  bool Write(const Message& message) {
    if (call_->shutting_down()) return false;
    const Response* typed =
        google::protobuf::DynamicCastToGenerated<Response>(&message);
    Response copy;
    if (typed == nullptr) {
      // A dynamic message of the right type (e.g. unpacked from an Any).
      if (message.GetDescriptor() != Response::descriptor()) {
        EmitWarning(absl::StrFormat("fake server: %s: cannot send a %s as a %s",
                                    call_->method(),
                                    message.GetDescriptor()->full_name(),
                                    Response::descriptor()->full_name()));
        return false;
      }
      copy.CopyFrom(message);
      typed = &copy;
    }
    call_->MarkInitialMetadataSent();
    if (!writer_->Write(*typed)) return false;
    if (record_ != nullptr) record_->AddResponse(*typed);
    return true;
  }

 private:
  grpc::ServerWriter<Response>* const writer_;
  ServerCallContext* const call_;
  Journal::ActiveCall* const record_;
};

// The ServerStream a backend writes to on pass-through: each message goes
// through the behaviour runner's filter, which may end the stream early.
template <typename Response>
class FilteredStream : public ServerStream<Response> {
 public:
  explicit FilteredStream(const std::function<bool(const Message&)>& filter)
      : filter_(filter) {}
  bool Write(const Response& message) override { return filter_(message); }

 private:
  const std::function<bool(const Message&)>& filter_;
};

// A server-streaming RPC whose request arrives as bytes, parsed by the fake
// (as Unary does), so that an unparsable or oversize request is journaled
// like any call instead of being refused by gRPC unseen.
template <typename Request, typename Response>
grpc::Status Stream(const ServerCore* core, const char* method,
                    grpc::ServerContext* context,
                    const grpc::ByteBuffer& request_buffer,
                    grpc::ServerWriter<Response>* writer,
                    StreamMethod<Request, Response> backend_method) {
  static const google::protobuf::Descriptor* const request_type =
      Request::descriptor();
  const ReceivedBytes received{&request_buffer, request_type};
  Request request;
  const grpc::Status rejected =
      ParseRequest(*core, request_buffer, request_type, &request);
  return HandleCall(
      *core, method, context, request, &received,
      [&](const Behavior& behavior, ServerCallContext& call,
          Journal::ActiveCall* record) {
        ClientStream<Response> out(writer, &call, record);
        return RunStreamBehavior(
            behavior, &call, Response::default_instance(),
            [&out](const Message& message) { return out.Write(message); },
            [&](const std::function<bool(const Message&)>& filter) {
              FilteredStream<Response> stream(filter);
              return (core->backend->*backend_method)(&call, request, &stream);
            });
      },
      rejected.ok() ? nullptr : &rejected);
}

// One gRPC service of the fake: its methods are added one by one, each with
// its full path and the Backend method it passes through to. Requests are
// received as grpc::ByteBuffer and parsed by the fake (see Unary and Stream
// above); streamed responses keep their message types.
class ServiceAdapter final : public grpc::Service {
 public:
  explicit ServiceAdapter(const ServerCore* core) : core_(core) {}

  // `path` must outlive the adapter (a string literal).
  template <typename Request, typename Response>
  void AddUnary(const char* path,
                UnaryMethod<Request, Response> backend_method) {
    using Handler =
        grpc::internal::RpcMethodHandler<ServiceAdapter, grpc::ByteBuffer,
                                         grpc::ByteBuffer>;
    AddMethod(new grpc::internal::RpcServiceMethod(
        path, grpc::internal::RpcMethod::NORMAL_RPC,
        new Handler(
            [path, backend_method](
                ServiceAdapter* self, grpc::ServerContext* context,
                const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
              return Unary<Request, Response>(self->core_, path, context,
                                              *request, response,
                                              backend_method);
            },
            this)));
  }

  template <typename Request, typename Response>
  void AddStream(const char* path,
                 StreamMethod<Request, Response> backend_method) {
    using Handler =
        grpc::internal::ServerStreamingHandler<ServiceAdapter, grpc::ByteBuffer,
                                               Response>;
    AddMethod(new grpc::internal::RpcServiceMethod(
        path, grpc::internal::RpcMethod::SERVER_STREAMING,
        new Handler(
            [path, backend_method](ServiceAdapter* self,
                                   grpc::ServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ServerWriter<Response>* writer) {
              return Stream<Request, Response>(
                  self->core_, path, context, *request, writer, backend_method);
            },
            this)));
  }

 private:
  const ServerCore* const core_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::Service>> MakeServiceAdapters(
    const ServerCore* core) {
  // One line per RPC: its full path and its Backend method.
  // //fake_server:fake_workflows_server_test checks that every method of
  // fake_server/methods.h is served under its path.
  auto workflow = std::make_unique<ServiceAdapter>(core);
  workflow->AddUnary("/descarteslabs.workflows.WorkflowAPI/UpsertWorkflow",
                     &Backend::UpsertWorkflow);
  workflow->AddUnary("/descarteslabs.workflows.WorkflowAPI/GetWorkflow",
                     &Backend::GetWorkflow);
  workflow->AddUnary("/descarteslabs.workflows.WorkflowAPI/GetVersion",
                     &Backend::GetVersion);
  workflow->AddStream("/descarteslabs.workflows.WorkflowAPI/SearchWorkflows",
                      &Backend::SearchWorkflows);
  workflow->AddUnary("/descarteslabs.workflows.WorkflowAPI/DeleteWorkflow",
                     &Backend::DeleteWorkflow);
  workflow->AddUnary("/descarteslabs.workflows.WorkflowAPI/GetWmtsUrlTemplate",
                     &Backend::GetWmtsUrlTemplate);

  auto job = std::make_unique<ServiceAdapter>(core);
  job->AddUnary("/descarteslabs.workflows.JobAPI/CreateJob",
                &Backend::CreateJob);
  job->AddStream("/descarteslabs.workflows.JobAPI/ListJobs",
                 &Backend::ListJobs);
  job->AddUnary("/descarteslabs.workflows.JobAPI/GetJob", &Backend::GetJob);
  job->AddUnary("/descarteslabs.workflows.JobAPI/CancelJob",
                &Backend::CancelJob);
  job->AddStream("/descarteslabs.workflows.JobAPI/WatchJob",
                 &Backend::WatchJob);

  auto xyz = std::make_unique<ServiceAdapter>(core);
  xyz->AddUnary("/descarteslabs.workflows.XYZAPI/CreateXYZ",
                &Backend::CreateXYZ);
  xyz->AddUnary("/descarteslabs.workflows.XYZAPI/GetXYZ", &Backend::GetXYZ);
  xyz->AddStream("/descarteslabs.workflows.XYZAPI/ListXYZ", &Backend::ListXYZ);
  xyz->AddUnary("/descarteslabs.workflows.XYZAPI/DeleteXYZ",
                &Backend::DeleteXYZ);
  xyz->AddStream("/descarteslabs.workflows.XYZAPI/GetXYZSessionLogs",
                 &Backend::GetXYZSessionLogs);

  auto access_grant = std::make_unique<ServiceAdapter>(core);
  access_grant->AddUnary(
      "/descarteslabs.discover.v0alpha.AccessGrantApi/CreateAccessGrant",
      &Backend::CreateAccessGrant);
  access_grant->AddUnary(
      "/descarteslabs.discover.v0alpha.AccessGrantApi/DeleteAccessGrant",
      &Backend::DeleteAccessGrant);
  access_grant->AddUnary(
      "/descarteslabs.discover.v0alpha.AccessGrantApi/ListAccessGrants",
      &Backend::ListAccessGrants);
  access_grant->AddStream(
      "/descarteslabs.discover.v0alpha.AccessGrantApi/ListAccessGrantsStream",
      &Backend::ListAccessGrantsStream);
  access_grant->AddUnary(
      "/descarteslabs.discover.v0alpha.AccessGrantApi/ReplaceAccessGrant",
      &Backend::ReplaceAccessGrant);

  auto health = std::make_unique<ServiceAdapter>(core);
  health->AddUnary("/grpc.health.v1.Health/Check", &Backend::Check);
  health->AddStream("/grpc.health.v1.Health/Watch", &Backend::Watch);

  std::vector<std::unique_ptr<grpc::Service>> services;
  services.push_back(std::move(workflow));
  services.push_back(std::move(job));
  services.push_back(std::move(xyz));
  services.push_back(std::move(access_grant));
  services.push_back(std::move(health));
  return services;
}

}  // namespace fake
}  // namespace workflows
