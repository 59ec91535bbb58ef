#include "client/test_server.h"

#include <grpcpp/support/server_interceptor.h>

#include <chrono>
#include <utility>

#include "grpc/health/v1/health.grpc.pb.h"
#include "proto/discover.grpc.pb.h"
#include "proto/job.grpc.pb.h"
#include "proto/workflow.grpc.pb.h"
#include "proto/xyz.grpc.pb.h"

namespace workflows {
namespace testing {
namespace {

namespace wf = ::descarteslabs::workflows;
namespace discover = ::descarteslabs::discover::v0alpha;
namespace health = ::grpc::health::v1;

}  // namespace

class ScriptedServer::Services {
 public:
  explicit Services(ScriptedServer* server)
      : health_(server),
        workflow_(server),
        job_(server),
        xyz_(server),
        access_grant_(server) {}

  void Register(grpc::ServerBuilder& builder) {
    builder.RegisterService(&health_);
    builder.RegisterService(&workflow_);
    builder.RegisterService(&job_);
    builder.RegisterService(&xyz_);
    builder.RegisterService(&access_grant_);
  }

  template <typename Response>
  static grpc::Status Unary(ScriptedServer* server,
                            grpc::ServerContext* context, const char* method,
                            const google::protobuf::Message& request,
                            Response* response) {
    Reply reply = server->Begin(context, method, request);
    if (!reply.messages.empty() && reply.messages.front() != nullptr) {
      response->CopyFrom(*reply.messages.front());
    }
    if (reply.hang) server->Hang(context);
    return reply.status;
  }

  template <typename Response>
  static grpc::Status Stream(ScriptedServer* server,
                             grpc::ServerContext* context, const char* method,
                             const google::protobuf::Message& request,
                             grpc::ServerWriter<Response>* writer) {
    Reply reply = server->Begin(context, method, request);
    if (!reply.initial_metadata.empty()) writer->SendInitialMetadata();
    for (const auto& message : reply.messages) {
      Response typed;
      typed.CopyFrom(*message);
      if (!writer->Write(typed)) break;
    }
    if (reply.hang) server->Hang(context);
    return reply.status;
  }

#define UNARY(METHOD, REQUEST, RESPONSE)                                    \
  grpc::Status METHOD(grpc::ServerContext* context, const REQUEST* request, \
                      RESPONSE* response) override {                        \
    return Unary(server_, context, #METHOD, *request, response);            \
  }
#define STREAM(METHOD, REQUEST, RESPONSE)                                   \
  grpc::Status METHOD(grpc::ServerContext* context, const REQUEST* request, \
                      grpc::ServerWriter<RESPONSE>* writer) override {      \
    return Stream(server_, context, #METHOD, *request, writer);             \
  }

  class Health : public health::Health::Service {
   public:
    explicit Health(ScriptedServer* server) : server_(server) {}
    UNARY(Check, health::HealthCheckRequest, health::HealthCheckResponse)

   private:
    ScriptedServer* server_;
  };

  class Workflow : public wf::WorkflowAPI::Service {
   public:
    explicit Workflow(ScriptedServer* server) : server_(server) {}
    UNARY(UpsertWorkflow, wf::UpsertWorkflowRequest, wf::Workflow)
    UNARY(GetWorkflow, wf::GetWorkflowRequest, wf::Workflow)
    UNARY(GetVersion, wf::GetVersionRequest, wf::VersionedGraft)
    STREAM(SearchWorkflows, wf::SearchWorkflowsRequest, wf::Workflow)
    UNARY(DeleteWorkflow, wf::DeleteWorkflowRequest, wf::Empty)
    UNARY(GetWmtsUrlTemplate, wf::Empty, wf::WmtsUrlTemplateResponse)

   private:
    ScriptedServer* server_;
  };

  class Job : public wf::JobAPI::Service {
   public:
    explicit Job(ScriptedServer* server) : server_(server) {}
    UNARY(CreateJob, wf::CreateJobRequest, wf::Job)
    STREAM(ListJobs, wf::ListJobsRequest, wf::Job)
    UNARY(GetJob, wf::GetJobRequest, wf::Job)
    UNARY(CancelJob, wf::CancelJobRequest, wf::CancelJobResponse)
    STREAM(WatchJob, wf::WatchJobRequest, wf::Job::State)

   private:
    ScriptedServer* server_;
  };

  class Xyz : public wf::XYZAPI::Service {
   public:
    explicit Xyz(ScriptedServer* server) : server_(server) {}
    UNARY(CreateXYZ, wf::CreateXYZRequest, wf::XYZ)
    UNARY(GetXYZ, wf::GetXYZRequest, wf::XYZ)
    STREAM(ListXYZ, wf::ListXYZRequest, wf::XYZ)
    UNARY(DeleteXYZ, wf::DeleteXYZRequest, google::protobuf::Empty)
    STREAM(GetXYZSessionLogs, wf::GetXYZSessionLogsRequest, wf::XYZLogRecord)

   private:
    ScriptedServer* server_;
  };

  class AccessGrant : public discover::AccessGrantApi::Service {
   public:
    explicit AccessGrant(ScriptedServer* server) : server_(server) {}
    UNARY(CreateAccessGrant, discover::CreateAccessGrantRequest,
          discover::CreateAccessGrantResponse)
    UNARY(DeleteAccessGrant, discover::DeleteAccessGrantRequest,
          discover::DeleteAccessGrantResponse)
    UNARY(ListAccessGrants, discover::ListAccessGrantsRequest,
          discover::ListAccessGrantsResponse)
    STREAM(ListAccessGrantsStream, discover::ListAccessGrantsStreamRequest,
           discover::ListAccessGrantsStreamResponse)
    UNARY(ReplaceAccessGrant, discover::ReplaceAccessGrantRequest,
          discover::ReplaceAccessGrantResponse)

   private:
    ScriptedServer* server_;
  };

#undef UNARY
#undef STREAM

 private:
  Health health_;
  Workflow workflow_;
  Job job_;
  Xyz xyz_;
  AccessGrant access_grant_;
};

// Records each call's method path as gRPC routed it. The sync API gives
// handlers no way to read it, and the bare names the handlers pass would
// not catch a client calling the wrong service.
class ScriptedServer::PathRecorder
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit PathRecorder(ScriptedServer* server) : server_(server) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    server_->NotePath(info->server_context(), info->method());
    return nullptr;  // Nothing to intercept.
  }

 private:
  ScriptedServer* server_;
};

void ScriptedServer::Configure(grpc::ServerBuilder& builder) {
  services_->Register(builder);
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      creators;
  creators.push_back(std::make_unique<PathRecorder>(this));
  builder.experimental().SetInterceptorCreators(std::move(creators));
}

void ScriptedServer::NotePath(const grpc::ServerContextBase* context,
                              std::string path) {
  absl::MutexLock lock(&mu_);
  paths_[context] = std::move(path);
}

ScriptedServer::ScriptedServer()
    : services_(std::make_unique<Services>(this)) {}

ScriptedServer::~ScriptedServer() { Shutdown(); }

int ScriptedServer::Start(
    const std::string& address,
    std::shared_ptr<grpc::ServerCredentials> credentials) {
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(
      address, credentials ? credentials : grpc::InsecureServerCredentials(),
      &port);
  Configure(builder);
  server_ = builder.BuildAndStart();
  return server_ == nullptr ? 0 : port;
}

std::shared_ptr<grpc::Channel> ScriptedServer::InProcessChannel() {
  if (server_ == nullptr) {
    grpc::ServerBuilder builder;
    Configure(builder);
    server_ = builder.BuildAndStart();
  }
  return server_->InProcessChannel(grpc::ChannelArguments());
}

void ScriptedServer::Enqueue(const std::string& method, Reply reply) {
  absl::MutexLock lock(&mu_);
  replies_[method].push_back(std::move(reply));
}

std::vector<RecordedCall> ScriptedServer::calls(
    const std::string& method) const {
  absl::MutexLock lock(&mu_);
  std::vector<RecordedCall> out;
  for (const RecordedCall& call : calls_) {
    if (method.empty() || call.method == method) out.push_back(call);
  }
  return out;
}

int ScriptedServer::count(const std::string& method) const {
  return static_cast<int>(calls(method).size());
}

void ScriptedServer::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (!release_.HasBeenNotified()) release_.Notify();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
}

Reply ScriptedServer::Begin(grpc::ServerContext* context,
                            const std::string& method,
                            const google::protobuf::Message& request) {
  RecordedCall call;
  call.method = method;
  call.metadata = ToMetadata(context->client_metadata());
  call.time_left = absl::FromChrono(context->deadline()) - absl::Now();
  call.request = request.SerializeAsString();
  Reply reply;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = paths_.find(context); it != paths_.end()) {
      call.full_method = std::move(it->second);
      paths_.erase(it);
    }
    calls_.push_back(std::move(call));
    auto it = replies_.find(method);
    if (it != replies_.end() && !it->second.empty()) {
      reply = std::move(it->second.front());
      it->second.pop_front();
    }
  }
  for (const auto& [key, value] : reply.initial_metadata) {
    context->AddInitialMetadata(key, value);
  }
  for (const auto& [key, value] : reply.trailing_metadata) {
    context->AddTrailingMetadata(key, value);
  }
  return reply;
}

void ScriptedServer::Hang(grpc::ServerContext* context) {
  // Outlives the client's deadline, so the client's own timer ends the call;
  // stops when the client cancels (or the deadline passed well ago) or the
  // server shuts down. The 10 ms slices only bound how late we notice.
  absl::Time give_up = absl::FromChrono(context->deadline()) + absl::Seconds(2);
  while (!context->IsCancelled() && absl::Now() < give_up &&
         !release_.WaitForNotificationWithDeadline(
             std::min(give_up, absl::Now() + absl::Milliseconds(10)))) {
  }
}

}  // namespace testing
}  // namespace workflows
