#ifndef WORKFLOWS_FAKE_SERVER_BACKEND_H_
#define WORKFLOWS_FAKE_SERVER_BACKEND_H_

#include <grpcpp/support/status.h>

#include "fake_server/call_context.h"
#include "grpc/health/v1/health.pb.h"
#include "proto/discover.pb.h"
#include "proto/job.pb.h"
#include "proto/workflow.pb.h"
#include "proto/xyz.pb.h"

namespace workflows {
namespace fake {

// Backend answers Workflows RPCs once the server has decided the call is not
// scripted: one virtual method per RPC of WorkflowAPI, JobAPI, XYZAPI,
// AccessGrantApi and grpc.health.v1.Health. Unary methods fill `response`;
// server-streaming methods write to `stream`. The returned status ends the
// call.
//
// Implementations: InMemoryBackend (the realistic default) and, in the test
// kit, MockWorkflowsBackend (gMock). Methods are called concurrently from
// many server threads and must be thread-safe.
//
//   class MyBackend : public InMemoryBackend {
//     grpc::Status GetJob(CallContext* call, const GetJobRequest& request,
//                         Job* response) override {
//       return grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
//     }
//   };
class Backend {
 public:
  virtual ~Backend() = default;

  // descarteslabs.workflows.WorkflowAPI
  virtual grpc::Status UpsertWorkflow(
      CallContext* call,
      const descarteslabs::workflows::UpsertWorkflowRequest& request,
      descarteslabs::workflows::Workflow* response) = 0;
  virtual grpc::Status GetWorkflow(
      CallContext* call,
      const descarteslabs::workflows::GetWorkflowRequest& request,
      descarteslabs::workflows::Workflow* response) = 0;
  virtual grpc::Status GetVersion(
      CallContext* call,
      const descarteslabs::workflows::GetVersionRequest& request,
      descarteslabs::workflows::VersionedGraft* response) = 0;
  virtual grpc::Status SearchWorkflows(
      CallContext* call,
      const descarteslabs::workflows::SearchWorkflowsRequest& request,
      ServerStream<descarteslabs::workflows::Workflow>* stream) = 0;
  virtual grpc::Status DeleteWorkflow(
      CallContext* call,
      const descarteslabs::workflows::DeleteWorkflowRequest& request,
      descarteslabs::workflows::Empty* response) = 0;
  virtual grpc::Status GetWmtsUrlTemplate(
      CallContext* call, const descarteslabs::workflows::Empty& request,
      descarteslabs::workflows::WmtsUrlTemplateResponse* response) = 0;

  // descarteslabs.workflows.JobAPI
  virtual grpc::Status CreateJob(
      CallContext* call,
      const descarteslabs::workflows::CreateJobRequest& request,
      descarteslabs::workflows::Job* response) = 0;
  virtual grpc::Status ListJobs(
      CallContext* call,
      const descarteslabs::workflows::ListJobsRequest& request,
      ServerStream<descarteslabs::workflows::Job>* stream) = 0;
  virtual grpc::Status GetJob(
      CallContext* call, const descarteslabs::workflows::GetJobRequest& request,
      descarteslabs::workflows::Job* response) = 0;
  virtual grpc::Status CancelJob(
      CallContext* call,
      const descarteslabs::workflows::CancelJobRequest& request,
      descarteslabs::workflows::CancelJobResponse* response) = 0;
  virtual grpc::Status WatchJob(
      CallContext* call,
      const descarteslabs::workflows::WatchJobRequest& request,
      ServerStream<descarteslabs::workflows::Job::State>* stream) = 0;

  // descarteslabs.workflows.XYZAPI
  virtual grpc::Status CreateXYZ(
      CallContext* call,
      const descarteslabs::workflows::CreateXYZRequest& request,
      descarteslabs::workflows::XYZ* response) = 0;
  virtual grpc::Status GetXYZ(
      CallContext* call, const descarteslabs::workflows::GetXYZRequest& request,
      descarteslabs::workflows::XYZ* response) = 0;
  virtual grpc::Status ListXYZ(
      CallContext* call,
      const descarteslabs::workflows::ListXYZRequest& request,
      ServerStream<descarteslabs::workflows::XYZ>* stream) = 0;
  virtual grpc::Status DeleteXYZ(
      CallContext* call,
      const descarteslabs::workflows::DeleteXYZRequest& request,
      google::protobuf::Empty* response) = 0;
  virtual grpc::Status GetXYZSessionLogs(
      CallContext* call,
      const descarteslabs::workflows::GetXYZSessionLogsRequest& request,
      ServerStream<descarteslabs::workflows::XYZLogRecord>* stream) = 0;

  // descarteslabs.discover.v0alpha.AccessGrantApi
  virtual grpc::Status CreateAccessGrant(
      CallContext* call,
      const descarteslabs::discover::v0alpha::CreateAccessGrantRequest& request,
      descarteslabs::discover::v0alpha::CreateAccessGrantResponse*
          response) = 0;
  virtual grpc::Status DeleteAccessGrant(
      CallContext* call,
      const descarteslabs::discover::v0alpha::DeleteAccessGrantRequest& request,
      descarteslabs::discover::v0alpha::DeleteAccessGrantResponse*
          response) = 0;
  virtual grpc::Status ListAccessGrants(
      CallContext* call,
      const descarteslabs::discover::v0alpha::ListAccessGrantsRequest& request,
      descarteslabs::discover::v0alpha::ListAccessGrantsResponse* response) = 0;
  virtual grpc::Status ListAccessGrantsStream(
      CallContext* call,
      const descarteslabs::discover::v0alpha::ListAccessGrantsStreamRequest&
          request,
      ServerStream<
          descarteslabs::discover::v0alpha::ListAccessGrantsStreamResponse>*
          stream) = 0;
  virtual grpc::Status ReplaceAccessGrant(
      CallContext* call,
      const descarteslabs::discover::v0alpha::ReplaceAccessGrantRequest&
          request,
      descarteslabs::discover::v0alpha::ReplaceAccessGrantResponse*
          response) = 0;

  // grpc.health.v1.Health
  virtual grpc::Status Check(
      CallContext* call, const grpc::health::v1::HealthCheckRequest& request,
      grpc::health::v1::HealthCheckResponse* response) = 0;
  virtual grpc::Status Watch(
      CallContext* call, const grpc::health::v1::HealthCheckRequest& request,
      ServerStream<grpc::health::v1::HealthCheckResponse>* stream) = 0;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_BACKEND_H_
