#include "fake_server/service_adapters.h"

#include <grpc/grpc_security_constants.h>

#include <functional>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "fake_server/behavior_runner.h"
#include "fake_server/session.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/discover.grpc.pb.h"
#include "proto/job.grpc.pb.h"
#include "proto/workflow.grpc.pb.h"
#include "proto/xyz.grpc.pb.h"
#include "tools/tsan_rpc_handoff.h"

namespace workflows {
namespace fake {
namespace {

using ::google::protobuf::Message;

namespace dw = ::descarteslabs::workflows;
namespace dd = ::descarteslabs::discover::v0alpha;
namespace hv1 = ::grpc::health::v1;

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
                   const Message& request, Journal::ActiveCall& entry) {
  entry.AddRequest(request);
  if (call.has_deadline()) {
    entry.SetDeadlineRemaining(call.deadline() - absl::Now());
  }
  const bool has_bearer = HasBearerToken(call.request_metadata());
  if (core.fixed_transport_identity) {
    // Every call of this server arrives over the same in-process transport:
    // ask gRPC once, not per call (each answer allocates; the peer string
    // and the AuthContext were a measurable part of the per-call cost).
    std::call_once(core.identity_once, [&] {
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
                        const Run& run) {
  ServerCallContext call(context, method, core.clock, core.shutdown);
  // The session is recorded even when no session rules exist, so that a
  // test can read its own calls from a shared journal; the lookup is one
  // map find and allocates nothing for untagged calls.
  Journal::ActiveCall entry = core.journal->Begin(
      method, core.clock->Now(), SessionOf(call.request_metadata()));
  Journal::ActiveCall* record = entry.recording() ? &entry : nullptr;
  if (record != nullptr) RecordArrival(core, call, request, entry);

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
  // The client may be across a socket: order the handler's work before what
  // workflows::Client's caller does with the response (ThreadSanitizer only).
  tsan::ServerResponding();
  return status;
}

template <typename Request, typename Response>
using UnaryMethod = grpc::Status (Backend::*)(CallContext*, const Request&,
                                              Response*);
template <typename Request, typename Response>
using StreamMethod = grpc::Status (Backend::*)(CallContext*, const Request&,
                                               ServerStream<Response>*);

template <typename Request, typename Response>
grpc::Status Unary(const ServerCore* core, const char* method,
                   grpc::ServerContext* context, const Request* request,
                   Response* response,
                   UnaryMethod<Request, Response> backend_method) {
  return HandleCall(
      *core, method, context, *request,
      [&](const Behavior& behavior, ServerCallContext& call,
          Journal::ActiveCall* record) {
        grpc::Status status = RunUnaryBehavior(behavior, &call, response, [&] {
          return (core->backend->*backend_method)(&call, *request, response);
        });
        if (status.ok() && record != nullptr) record->AddResponse(*response);
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
        absl::FPrintF(stderr, "fake server: %s: cannot send a %s as a %s\n",
                      call_->method(), message.GetDescriptor()->full_name(),
                      Response::descriptor()->full_name());
        return false;
      }
      copy.CopyFrom(message);
      typed = &copy;
    }
    call_->MarkInitialMetadataSent();
    tsan::ServerResponding();  // As at the end of HandleCall.
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

template <typename Request, typename Response>
grpc::Status Stream(const ServerCore* core, const char* method,
                    grpc::ServerContext* context, const Request* request,
                    grpc::ServerWriter<Response>* writer,
                    StreamMethod<Request, Response> backend_method) {
  return HandleCall(
      *core, method, context, *request,
      [&](const Behavior& behavior, ServerCallContext& call,
          Journal::ActiveCall* record) {
        ClientStream<Response> out(writer, &call, record);
        return RunStreamBehavior(
            behavior, &call, Response::default_instance(),
            [&out](const Message& message) { return out.Write(message); },
            [&](const std::function<bool(const Message&)>& filter) {
              FilteredStream<Response> stream(filter);
              return (core->backend->*backend_method)(&call, *request, &stream);
            });
      });
}

// One line per RPC: the method's full path and its Backend method.

class WorkflowApiAdapter final : public dw::WorkflowAPI::Service {
 public:
  explicit WorkflowApiAdapter(const ServerCore* core) : core_(core) {}

  grpc::Status UpsertWorkflow(grpc::ServerContext* c,
                              const dw::UpsertWorkflowRequest* q,
                              dw::Workflow* r) override {
    return Unary(core_, "/descarteslabs.workflows.WorkflowAPI/UpsertWorkflow",
                 c, q, r, &Backend::UpsertWorkflow);
  }
  grpc::Status GetWorkflow(grpc::ServerContext* c,
                           const dw::GetWorkflowRequest* q,
                           dw::Workflow* r) override {
    return Unary(core_, "/descarteslabs.workflows.WorkflowAPI/GetWorkflow", c,
                 q, r, &Backend::GetWorkflow);
  }
  grpc::Status GetVersion(grpc::ServerContext* c,
                          const dw::GetVersionRequest* q,
                          dw::VersionedGraft* r) override {
    return Unary(core_, "/descarteslabs.workflows.WorkflowAPI/GetVersion", c, q,
                 r, &Backend::GetVersion);
  }
  grpc::Status SearchWorkflows(grpc::ServerContext* c,
                               const dw::SearchWorkflowsRequest* q,
                               grpc::ServerWriter<dw::Workflow>* w) override {
    return Stream(core_, "/descarteslabs.workflows.WorkflowAPI/SearchWorkflows",
                  c, q, w, &Backend::SearchWorkflows);
  }
  grpc::Status DeleteWorkflow(grpc::ServerContext* c,
                              const dw::DeleteWorkflowRequest* q,
                              dw::Empty* r) override {
    return Unary(core_, "/descarteslabs.workflows.WorkflowAPI/DeleteWorkflow",
                 c, q, r, &Backend::DeleteWorkflow);
  }
  grpc::Status GetWmtsUrlTemplate(grpc::ServerContext* c, const dw::Empty* q,
                                  dw::WmtsUrlTemplateResponse* r) override {
    return Unary(core_,
                 "/descarteslabs.workflows.WorkflowAPI/GetWmtsUrlTemplate", c,
                 q, r, &Backend::GetWmtsUrlTemplate);
  }

 private:
  const ServerCore* const core_;
};

class JobApiAdapter final : public dw::JobAPI::Service {
 public:
  explicit JobApiAdapter(const ServerCore* core) : core_(core) {}

  grpc::Status CreateJob(grpc::ServerContext* c, const dw::CreateJobRequest* q,
                         dw::Job* r) override {
    return Unary(core_, "/descarteslabs.workflows.JobAPI/CreateJob", c, q, r,
                 &Backend::CreateJob);
  }
  grpc::Status ListJobs(grpc::ServerContext* c, const dw::ListJobsRequest* q,
                        grpc::ServerWriter<dw::Job>* w) override {
    return Stream(core_, "/descarteslabs.workflows.JobAPI/ListJobs", c, q, w,
                  &Backend::ListJobs);
  }
  grpc::Status GetJob(grpc::ServerContext* c, const dw::GetJobRequest* q,
                      dw::Job* r) override {
    return Unary(core_, "/descarteslabs.workflows.JobAPI/GetJob", c, q, r,
                 &Backend::GetJob);
  }
  grpc::Status CancelJob(grpc::ServerContext* c, const dw::CancelJobRequest* q,
                         dw::CancelJobResponse* r) override {
    return Unary(core_, "/descarteslabs.workflows.JobAPI/CancelJob", c, q, r,
                 &Backend::CancelJob);
  }
  grpc::Status WatchJob(grpc::ServerContext* c, const dw::WatchJobRequest* q,
                        grpc::ServerWriter<dw::Job::State>* w) override {
    return Stream(core_, "/descarteslabs.workflows.JobAPI/WatchJob", c, q, w,
                  &Backend::WatchJob);
  }

 private:
  const ServerCore* const core_;
};

class XyzApiAdapter final : public dw::XYZAPI::Service {
 public:
  explicit XyzApiAdapter(const ServerCore* core) : core_(core) {}

  grpc::Status CreateXYZ(grpc::ServerContext* c, const dw::CreateXYZRequest* q,
                         dw::XYZ* r) override {
    return Unary(core_, "/descarteslabs.workflows.XYZAPI/CreateXYZ", c, q, r,
                 &Backend::CreateXYZ);
  }
  grpc::Status GetXYZ(grpc::ServerContext* c, const dw::GetXYZRequest* q,
                      dw::XYZ* r) override {
    return Unary(core_, "/descarteslabs.workflows.XYZAPI/GetXYZ", c, q, r,
                 &Backend::GetXYZ);
  }
  grpc::Status ListXYZ(grpc::ServerContext* c, const dw::ListXYZRequest* q,
                       grpc::ServerWriter<dw::XYZ>* w) override {
    return Stream(core_, "/descarteslabs.workflows.XYZAPI/ListXYZ", c, q, w,
                  &Backend::ListXYZ);
  }
  grpc::Status DeleteXYZ(grpc::ServerContext* c, const dw::DeleteXYZRequest* q,
                         google::protobuf::Empty* r) override {
    return Unary(core_, "/descarteslabs.workflows.XYZAPI/DeleteXYZ", c, q, r,
                 &Backend::DeleteXYZ);
  }
  grpc::Status GetXYZSessionLogs(
      grpc::ServerContext* c, const dw::GetXYZSessionLogsRequest* q,
      grpc::ServerWriter<dw::XYZLogRecord>* w) override {
    return Stream(core_, "/descarteslabs.workflows.XYZAPI/GetXYZSessionLogs", c,
                  q, w, &Backend::GetXYZSessionLogs);
  }

 private:
  const ServerCore* const core_;
};

class AccessGrantApiAdapter final : public dd::AccessGrantApi::Service {
 public:
  explicit AccessGrantApiAdapter(const ServerCore* core) : core_(core) {}

  grpc::Status CreateAccessGrant(grpc::ServerContext* c,
                                 const dd::CreateAccessGrantRequest* q,
                                 dd::CreateAccessGrantResponse* r) override {
    return Unary(
        core_,
        "/descarteslabs.discover.v0alpha.AccessGrantApi/CreateAccessGrant", c,
        q, r, &Backend::CreateAccessGrant);
  }
  grpc::Status DeleteAccessGrant(grpc::ServerContext* c,
                                 const dd::DeleteAccessGrantRequest* q,
                                 dd::DeleteAccessGrantResponse* r) override {
    return Unary(
        core_,
        "/descarteslabs.discover.v0alpha.AccessGrantApi/DeleteAccessGrant", c,
        q, r, &Backend::DeleteAccessGrant);
  }
  grpc::Status ListAccessGrants(grpc::ServerContext* c,
                                const dd::ListAccessGrantsRequest* q,
                                dd::ListAccessGrantsResponse* r) override {
    return Unary(
        core_,
        "/descarteslabs.discover.v0alpha.AccessGrantApi/ListAccessGrants", c, q,
        r, &Backend::ListAccessGrants);
  }
  grpc::Status ListAccessGrantsStream(
      grpc::ServerContext* c, const dd::ListAccessGrantsStreamRequest* q,
      grpc::ServerWriter<dd::ListAccessGrantsStreamResponse>* w) override {
    return Stream(
        core_,
        "/descarteslabs.discover.v0alpha.AccessGrantApi/ListAccessGrantsStream",
        c, q, w, &Backend::ListAccessGrantsStream);
  }
  grpc::Status ReplaceAccessGrant(grpc::ServerContext* c,
                                  const dd::ReplaceAccessGrantRequest* q,
                                  dd::ReplaceAccessGrantResponse* r) override {
    return Unary(
        core_,
        "/descarteslabs.discover.v0alpha.AccessGrantApi/ReplaceAccessGrant", c,
        q, r, &Backend::ReplaceAccessGrant);
  }

 private:
  const ServerCore* const core_;
};

class HealthAdapter final : public hv1::Health::Service {
 public:
  explicit HealthAdapter(const ServerCore* core) : core_(core) {}

  grpc::Status Check(grpc::ServerContext* c, const hv1::HealthCheckRequest* q,
                     hv1::HealthCheckResponse* r) override {
    return Unary(core_, "/grpc.health.v1.Health/Check", c, q, r,
                 &Backend::Check);
  }
  grpc::Status Watch(grpc::ServerContext* c, const hv1::HealthCheckRequest* q,
                     grpc::ServerWriter<hv1::HealthCheckResponse>* w) override {
    return Stream(core_, "/grpc.health.v1.Health/Watch", c, q, w,
                  &Backend::Watch);
  }

 private:
  const ServerCore* const core_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::Service>> MakeServiceAdapters(
    const ServerCore* core) {
  std::vector<std::unique_ptr<grpc::Service>> services;
  services.push_back(std::make_unique<WorkflowApiAdapter>(core));
  services.push_back(std::make_unique<JobApiAdapter>(core));
  services.push_back(std::make_unique<XyzApiAdapter>(core));
  services.push_back(std::make_unique<AccessGrantApiAdapter>(core));
  services.push_back(std::make_unique<HealthAdapter>(core));
  return services;
}

}  // namespace fake
}  // namespace workflows
