#ifndef WORKFLOWS_TESTING_MOCK_WORKFLOWS_BACKEND_H_
#define WORKFLOWS_TESTING_MOCK_WORKFLOWS_BACKEND_H_

#include <memory>
#include <ostream>

#include "fake_server/backend.h"
#include "gmock/gmock.h"

namespace workflows {
namespace testing {

// MockWorkflowsBackend is a fake_server::Backend whose every RPC, Workflows
// and Health, is a gMock method. Plug it into a FakeWorkflowsServer (or use
// WorkflowsTest, which does) and script the server's answers with
// EXPECT_CALL and the actions in testing/actions.h:
//
//   auto backend = std::make_shared<StrictMock<MockWorkflowsBackend>>();
//   EXPECT_CALL(*backend, GetJob(_, EqualsProto("id: 'j1'"), _))
//       .WillOnce(FailTimesThen(2, ReturnStatus(grpc::StatusCode::UNAVAILABLE),
//                               Reply(job)));
//
// Arguments are (CallContext* call, const Request& request, Response* or
// ServerStream<Response>*). What a call does when no expectation is set
// depends on the constructor and on gMock's flavour, as in gMock itself:
//   - MockWorkflowsBackend(fallthrough): unmatched calls go to `fallthrough`
//     (usually the server's InMemoryBackend);
//   - MockWorkflowsBackend(): they fail with UNIMPLEMENTED naming the method;
//   - NiceMock<> stays silent about them, NaggyMock<> (the default) warns,
//     StrictMock<> fails the test.
// A call that matches none of the expectations set for its method fails the
// test at once, printing the request and each expectation's mismatch (with a
// field-level diff for EqualsProto), and then answers as above: it never hangs.
// Expectations are verified when the mock is destroyed (WorkflowsTest
// destroys it in TearDown).
class MockWorkflowsBackend : public fake::Backend {
 public:
  // Unmatched calls fail with UNIMPLEMENTED.
  MockWorkflowsBackend();
  // Unmatched calls go to `fallthrough` (must outlive nothing: it is shared).
  explicit MockWorkflowsBackend(std::shared_ptr<fake::Backend> fallthrough);
  // Out of line, as the destructor is the key function: the vtable and so
  // every mocked method's FunctionMocker are compiled once, in
  // mock_workflows_backend.cc, not in each test (gMock cookbook, "Making the
  // Compilation Faster").
  ~MockWorkflowsBackend() override;

  // The backend unmatched calls fall through to; nullptr if none.
  const std::shared_ptr<fake::Backend>& fallthrough() const {
    return fallthrough_;
  }

  MOCK_METHOD(grpc::Status, UpsertWorkflow,
              (fake::CallContext*,
               const descarteslabs::workflows::UpsertWorkflowRequest&,
               descarteslabs::workflows::Workflow*),
              (override));
  MOCK_METHOD(grpc::Status, GetWorkflow,
              (fake::CallContext*,
               const descarteslabs::workflows::GetWorkflowRequest&,
               descarteslabs::workflows::Workflow*),
              (override));
  MOCK_METHOD(grpc::Status, GetVersion,
              (fake::CallContext*,
               const descarteslabs::workflows::GetVersionRequest&,
               descarteslabs::workflows::VersionedGraft*),
              (override));
  MOCK_METHOD(grpc::Status, SearchWorkflows,
              (fake::CallContext*,
               const descarteslabs::workflows::SearchWorkflowsRequest&,
               fake::ServerStream<descarteslabs::workflows::Workflow>*),
              (override));
  MOCK_METHOD(grpc::Status, DeleteWorkflow,
              (fake::CallContext*,
               const descarteslabs::workflows::DeleteWorkflowRequest&,
               descarteslabs::workflows::Empty*),
              (override));
  MOCK_METHOD(grpc::Status, GetWmtsUrlTemplate,
              (fake::CallContext*, const descarteslabs::workflows::Empty&,
               descarteslabs::workflows::WmtsUrlTemplateResponse*),
              (override));

  MOCK_METHOD(grpc::Status, CreateJob,
              (fake::CallContext*,
               const descarteslabs::workflows::CreateJobRequest&,
               descarteslabs::workflows::Job*),
              (override));
  MOCK_METHOD(grpc::Status, ListJobs,
              (fake::CallContext*,
               const descarteslabs::workflows::ListJobsRequest&,
               fake::ServerStream<descarteslabs::workflows::Job>*),
              (override));
  MOCK_METHOD(grpc::Status, GetJob,
              (fake::CallContext*,
               const descarteslabs::workflows::GetJobRequest&,
               descarteslabs::workflows::Job*),
              (override));
  MOCK_METHOD(grpc::Status, CancelJob,
              (fake::CallContext*,
               const descarteslabs::workflows::CancelJobRequest&,
               descarteslabs::workflows::CancelJobResponse*),
              (override));
  MOCK_METHOD(grpc::Status, WatchJob,
              (fake::CallContext*,
               const descarteslabs::workflows::WatchJobRequest&,
               fake::ServerStream<descarteslabs::workflows::Job::State>*),
              (override));

  MOCK_METHOD(grpc::Status, CreateXYZ,
              (fake::CallContext*,
               const descarteslabs::workflows::CreateXYZRequest&,
               descarteslabs::workflows::XYZ*),
              (override));
  MOCK_METHOD(grpc::Status, GetXYZ,
              (fake::CallContext*,
               const descarteslabs::workflows::GetXYZRequest&,
               descarteslabs::workflows::XYZ*),
              (override));
  MOCK_METHOD(grpc::Status, ListXYZ,
              (fake::CallContext*,
               const descarteslabs::workflows::ListXYZRequest&,
               fake::ServerStream<descarteslabs::workflows::XYZ>*),
              (override));
  MOCK_METHOD(grpc::Status, DeleteXYZ,
              (fake::CallContext*,
               const descarteslabs::workflows::DeleteXYZRequest&,
               google::protobuf::Empty*),
              (override));
  MOCK_METHOD(grpc::Status, GetXYZSessionLogs,
              (fake::CallContext*,
               const descarteslabs::workflows::GetXYZSessionLogsRequest&,
               fake::ServerStream<descarteslabs::workflows::XYZLogRecord>*),
              (override));

  MOCK_METHOD(
      grpc::Status, CreateAccessGrant,
      (fake::CallContext*,
       const descarteslabs::discover::v0alpha::CreateAccessGrantRequest&,
       descarteslabs::discover::v0alpha::CreateAccessGrantResponse*),
      (override));
  MOCK_METHOD(
      grpc::Status, DeleteAccessGrant,
      (fake::CallContext*,
       const descarteslabs::discover::v0alpha::DeleteAccessGrantRequest&,
       descarteslabs::discover::v0alpha::DeleteAccessGrantResponse*),
      (override));
  MOCK_METHOD(grpc::Status, ListAccessGrants,
              (fake::CallContext*,
               const descarteslabs::discover::v0alpha::ListAccessGrantsRequest&,
               descarteslabs::discover::v0alpha::ListAccessGrantsResponse*),
              (override));
  MOCK_METHOD(
      grpc::Status, ListAccessGrantsStream,
      (fake::CallContext*,
       const descarteslabs::discover::v0alpha::ListAccessGrantsStreamRequest&,
       fake::ServerStream<
           descarteslabs::discover::v0alpha::ListAccessGrantsStreamResponse>*),
      (override));
  MOCK_METHOD(
      grpc::Status, ReplaceAccessGrant,
      (fake::CallContext*,
       const descarteslabs::discover::v0alpha::ReplaceAccessGrantRequest&,
       descarteslabs::discover::v0alpha::ReplaceAccessGrantResponse*),
      (override));

  MOCK_METHOD(grpc::Status, Check,
              (fake::CallContext*, const grpc::health::v1::HealthCheckRequest&,
               grpc::health::v1::HealthCheckResponse*),
              (override));
  MOCK_METHOD(grpc::Status, Watch,
              (fake::CallContext*, const grpc::health::v1::HealthCheckRequest&,
               fake::ServerStream<grpc::health::v1::HealthCheckResponse>*),
              (override));

 private:
  void SetDefaultActions();

  std::shared_ptr<fake::Backend> fallthrough_;
};

// The gMock flavour of a MockWorkflowsBackend, as MakeMockWorkflowsBackend
// builds it.
enum class MockFlavor {
  kNice,   // ::testing::NiceMock: unscripted calls are silent
  kNaggy,  // ::testing::NaggyMock: they print a warning
  kStrict  // ::testing::StrictMock: they fail the test
};

// A MockWorkflowsBackend wrapped in `flavor`, falling through to
// `fallthrough` when that is non-null. Same as
// std::make_shared<::testing::NiceMock<MockWorkflowsBackend>>(fallthrough)
// and so on, but compiled once here rather than in each test.
std::shared_ptr<MockWorkflowsBackend> MakeMockWorkflowsBackend(
    MockFlavor flavor, std::shared_ptr<fake::Backend> fallthrough = nullptr);

}  // namespace testing
}  // namespace workflows

// The three flavours are instantiated once, in mock_workflows_backend.cc.
extern template class ::testing::NiceMock<
    ::workflows::testing::MockWorkflowsBackend>;
extern template class ::testing::NaggyMock<
    ::workflows::testing::MockWorkflowsBackend>;
extern template class ::testing::StrictMock<
    ::workflows::testing::MockWorkflowsBackend>;

namespace workflows {
namespace fake {
// Lets gMock print the call of an unexpected or mismatched RPC readably.
void PrintTo(CallContext* call, std::ostream* os);
}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_TESTING_MOCK_WORKFLOWS_BACKEND_H_
