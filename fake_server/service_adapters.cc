#include "fake_server/service_adapters.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/rpc_service_method.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/method_handler.h>

#include <functional>
#include <optional>
#include <string>

#include "absl/base/call_once.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "fake_server/behavior_runner.h"
#include "grpc/health/v1/health.pb.h"
#include "proto/discover.pb.h"
#include "proto/job.pb.h"
#include "proto/workflow.pb.h"
#include "proto/xyz.pb.h"

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

// Records what the client sent, as it arrives. Only runs when the journal is
// recording. The metadata is handed over when the call ends (see HandleCall).
void RecordArrival(const ServerCore& core, ServerCallContext& call,
                   const Message& request, const grpc::ByteBuffer& raw_request,
                   Journal::ActiveCall& entry) {
  entry.AddRequest(request.GetDescriptor(), raw_request);
  if (call.has_deadline()) {
    entry.SetDeadlineRemaining(call.deadline() - absl::Now());
  }
  const bool has_bearer = HasBearerToken(call.request_metadata());
  if (core.fixed_transport_identity) {
    // Every call of this server arrives over the same in-process transport:
    // ask gRPC once, not per call (each answer allocates; the peer string
    // and the AuthContext were a measurable part of the per-call cost).
    absl::call_once(core.identity_once, [&] {
      core.transport_peer = call.peer();
      core.transport_identity = TransportIdentityOf(*call.server_context());
    });
    entry.SetPeer(core.transport_peer);
    entry.SetIdentity(core.transport_identity, has_bearer);
  } else {
    entry.SetPeer(call.peer());
    entry.SetIdentity(TransportIdentityOf(*call.server_context()), has_bearer);
  }
}

// A call that ended because the server is going away tells the client so
// with UNAVAILABLE (retryable, as a draining real server would), rather than
// the CANCELLED a waiting behaviour reports.
grpc::Status AdjustForShutdown(const ServerCallContext& call,
                               grpc::Status status) {
  if (call.shutting_down() &&
      (status.error_code() == grpc::StatusCode::CANCELLED ||
       status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) &&
      !call.deadline_passed()) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                        "the fake Workflows server is shutting down");
  }
  return status;
}

// The steps shared by unary and streaming calls: journal begin, auth,
// decision, `run` (which executes the behaviour), journal end.
template <typename Run>
grpc::Status HandleCall(const ServerCore& core, absl::string_view method,
                        grpc::ServerContext* context, const Message& request,
                        const grpc::ByteBuffer& raw_request, const Run& run) {
  ServerCallContext call(context, method, core.clock, core.shutdown);
  Journal::ActiveCall entry = core.journal->Begin(method, core.clock->Now());
  Journal::ActiveCall* record = entry.recording() ? &entry : nullptr;
  if (record != nullptr) RecordArrival(core, call, request, raw_request, entry);

  const CallView view{method, &request, &call.request_metadata()};
  // A call the auth policy refuses runs the refusal as its behaviour, so it
  // gets the same metadata handling and journaling as a scripted failure.
  std::optional<Decision> refused = core.script->CheckAuth(view);
  const Decision decision =
      refused.has_value() ? *std::move(refused) : core.script->Decide(view);
  if (record != nullptr) record->SetRule(decision.rule_name);
  grpc::Status status = run(decision.behavior, call, record);
  status = AdjustForShutdown(call, std::move(status));
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

// Parses a request as gRPC's generated handler would (same error status),
// leaving `raw` intact for the journal.
template <typename Request>
grpc::Status ParseRequest(const grpc::ByteBuffer& raw, Request* request) {
  grpc::ByteBuffer consumed(raw);  // shares the slices; Deserialize clears it
  return grpc::SerializationTraits<Request>::Deserialize(&consumed, request);
}

grpc::Status SerializeMessage(const Message& message, grpc::ByteBuffer* raw) {
  bool own_buffer = false;
  return grpc::SerializationTraits<Message>::Serialize(message, raw,
                                                       &own_buffer);
}

template <typename Request, typename Response>
grpc::Status ServeUnary(const ServerCore& core, const char* method,
                        grpc::ServerContext* context,
                        const grpc::ByteBuffer& raw_request,
                        grpc::ByteBuffer* raw_response,
                        UnaryMethod<Request, Response> backend_method) {
  Request request;
  grpc::Status parsed = ParseRequest(raw_request, &request);
  if (!parsed.ok()) return parsed;
  Response response;
  return HandleCall(
      core, method, context, request, raw_request,
      [&](const Behavior& behavior, ServerCallContext& call,
          Journal::ActiveCall* record) {
        grpc::Status status = RunUnaryBehavior(behavior, &call, &response, [&] {
          return (core.backend->*backend_method)(&call, request, &response);
        });
        if (!status.ok()) return status;
        status = SerializeMessage(response, raw_response);
        if (status.ok() && record != nullptr) {
          record->AddResponse(Response::descriptor(), *raw_response);
        }
        return status;
      });
}

// Sends the stream's messages to the client, recording each one sent.
template <typename Response>
class ClientStream {
 public:
  ClientStream(grpc::ServerWriter<grpc::ByteBuffer>* writer,
               ServerCallContext* call, Journal::ActiveCall* record)
      : writer_(writer), call_(call), record_(record) {}

  // `message` may be a Response or a dynamic message of its type (e.g.
  // unpacked from an Any); either serializes the same.
  bool Write(const Message& message) {
    if (call_->shutting_down()) return false;
    if (message.GetDescriptor() != Response::descriptor()) {
      absl::FPrintF(stderr, "fake server: %s: cannot send a %s as a %s\n",
                    call_->method(), message.GetDescriptor()->full_name(),
                    Response::descriptor()->full_name());
      return false;
    }
    grpc::ByteBuffer raw;
    if (!SerializeMessage(message, &raw).ok()) return false;
    call_->MarkInitialMetadataSent();
    if (!writer_->Write(raw)) return false;
    if (record_ != nullptr) record_->AddResponse(Response::descriptor(), raw);
    return true;
  }

 private:
  grpc::ServerWriter<grpc::ByteBuffer>* const writer_;
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

template <typename Request, typename Response>
grpc::Status ServeStream(const ServerCore& core, const char* method,
                         grpc::ServerContext* context,
                         const grpc::ByteBuffer& raw_request,
                         grpc::ServerWriter<grpc::ByteBuffer>* writer,
                         StreamMethod<Request, Response> backend_method) {
  Request request;
  grpc::Status parsed = ParseRequest(raw_request, &request);
  if (!parsed.ok()) return parsed;
  return HandleCall(
      core, method, context, request, raw_request,
      [&](const Behavior& behavior, ServerCallContext& call,
          Journal::ActiveCall* record) {
        ClientStream<Response> out(writer, &call, record);
        return RunStreamBehavior(
            behavior, &call, Response::default_instance(),
            [&out](const Message& message) { return out.Write(message); },
            [&](const std::function<bool(const Message&)>& filter) {
              FilteredStream<Response> stream(filter);
              return (core.backend->*backend_method)(&call, request, &stream);
            });
      });
}

// One gRPC service of the fake server, served raw: requests arrive and
// responses leave as grpc::ByteBuffer. The adapter parses and serializes
// exactly once, as generated code would, and the journal keeps references
// to the same bytes instead of serializing every message a second time.
class RawService final : public grpc::Service {
 public:
  explicit RawService(const ServerCore* core) : core_(core) {}

  // `path` is the method's full name, e.g.
  // "/descarteslabs.workflows.JobAPI/GetJob"; a literal, so it outlives us.
  template <typename Request, typename Response>
  RawService& Unary(const char* path,
                    UnaryMethod<Request, Response> backend_method) {
    const ServerCore* core = core_;
    AddMethod(new grpc::internal::RpcServiceMethod(
        path, grpc::internal::RpcMethod::NORMAL_RPC,
        new grpc::internal::RpcMethodHandler<RawService, grpc::ByteBuffer,
                                             grpc::ByteBuffer>(
            [core, path, backend_method](
                RawService*, grpc::ServerContext* context,
                const grpc::ByteBuffer* request, grpc::ByteBuffer* response) {
              return ServeUnary(*core, path, context, *request, response,
                                backend_method);
            },
            this)));
    return *this;
  }

  template <typename Request, typename Response>
  RawService& Stream(const char* path,
                     StreamMethod<Request, Response> backend_method) {
    const ServerCore* core = core_;
    AddMethod(new grpc::internal::RpcServiceMethod(
        path, grpc::internal::RpcMethod::SERVER_STREAMING,
        new grpc::internal::ServerStreamingHandler<RawService, grpc::ByteBuffer,
                                                   grpc::ByteBuffer>(
            [core, path, backend_method](
                RawService*, grpc::ServerContext* context,
                const grpc::ByteBuffer* request,
                grpc::ServerWriter<grpc::ByteBuffer>* writer) {
              return ServeStream(*core, path, context, *request, writer,
                                 backend_method);
            },
            this)));
    return *this;
  }

 private:
  const ServerCore* const core_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::Service>> MakeServiceAdapters(
    const ServerCore* core) {
  // One RawService per gRPC service: the server names a service after its
  // methods' paths (reflection lists them that way).
  auto workflow_api = std::make_unique<RawService>(core);
  workflow_api
      ->Unary("/descarteslabs.workflows.WorkflowAPI/UpsertWorkflow",
              &Backend::UpsertWorkflow)
      .Unary("/descarteslabs.workflows.WorkflowAPI/GetWorkflow",
             &Backend::GetWorkflow)
      .Unary("/descarteslabs.workflows.WorkflowAPI/GetVersion",
             &Backend::GetVersion)
      .Stream("/descarteslabs.workflows.WorkflowAPI/SearchWorkflows",
              &Backend::SearchWorkflows)
      .Unary("/descarteslabs.workflows.WorkflowAPI/DeleteWorkflow",
             &Backend::DeleteWorkflow)
      .Unary("/descarteslabs.workflows.WorkflowAPI/GetWmtsUrlTemplate",
             &Backend::GetWmtsUrlTemplate);

  auto job_api = std::make_unique<RawService>(core);
  job_api
      ->Unary("/descarteslabs.workflows.JobAPI/CreateJob", &Backend::CreateJob)
      .Stream("/descarteslabs.workflows.JobAPI/ListJobs", &Backend::ListJobs)
      .Unary("/descarteslabs.workflows.JobAPI/GetJob", &Backend::GetJob)
      .Unary("/descarteslabs.workflows.JobAPI/CancelJob", &Backend::CancelJob)
      .Stream("/descarteslabs.workflows.JobAPI/WatchJob", &Backend::WatchJob);

  auto xyz_api = std::make_unique<RawService>(core);
  xyz_api
      ->Unary("/descarteslabs.workflows.XYZAPI/CreateXYZ", &Backend::CreateXYZ)
      .Unary("/descarteslabs.workflows.XYZAPI/GetXYZ", &Backend::GetXYZ)
      .Stream("/descarteslabs.workflows.XYZAPI/ListXYZ", &Backend::ListXYZ)
      .Unary("/descarteslabs.workflows.XYZAPI/DeleteXYZ", &Backend::DeleteXYZ)
      .Stream("/descarteslabs.workflows.XYZAPI/GetXYZSessionLogs",
              &Backend::GetXYZSessionLogs);

  auto access_grant_api = std::make_unique<RawService>(core);
  access_grant_api
      ->Unary(
          "/descarteslabs.discover.v0alpha.AccessGrantApi/CreateAccessGrant",
          &Backend::CreateAccessGrant)
      .Unary("/descarteslabs.discover.v0alpha.AccessGrantApi/DeleteAccessGrant",
             &Backend::DeleteAccessGrant)
      .Unary("/descarteslabs.discover.v0alpha.AccessGrantApi/ListAccessGrants",
             &Backend::ListAccessGrants)
      .Stream(
          "/descarteslabs.discover.v0alpha.AccessGrantApi/"
          "ListAccessGrantsStream",
          &Backend::ListAccessGrantsStream)
      .Unary(
          "/descarteslabs.discover.v0alpha.AccessGrantApi/ReplaceAccessGrant",
          &Backend::ReplaceAccessGrant);

  auto health = std::make_unique<RawService>(core);
  health->Unary("/grpc.health.v1.Health/Check", &Backend::Check)
      .Stream("/grpc.health.v1.Health/Watch", &Backend::Watch);

  std::vector<std::unique_ptr<grpc::Service>> services;
  services.push_back(std::move(workflow_api));
  services.push_back(std::move(job_api));
  services.push_back(std::move(xyz_api));
  services.push_back(std::move(access_grant_api));
  services.push_back(std::move(health));
  return services;
}

}  // namespace fake
}  // namespace workflows
