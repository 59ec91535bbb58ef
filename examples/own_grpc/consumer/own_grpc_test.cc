// The kit against repositories this workspace defined itself: a fixture test
// with a scripted failure, and this workspace's own generated gRPC mock.

#include "consumer/submission.grpc.pb.h"
#include "consumer/submission_mock.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace own_grpc {
namespace {

using ::descarteslabs::workflows::GetJobRequest;
using ::testing::_;
using ::testing::Return;
using workflows::testing::IsOk;
using workflows::testing::ReturnStatus;
using workflows::testing::StatusIs;

class OwnGrpcTest : public workflows::testing::WorkflowsTest {};

TEST_F(OwnGrpcTest, ScriptedFailureReachesTheClient) {
  EXPECT_CALL(backend(), GetJob)
      .WillOnce(ReturnStatus(grpc::StatusCode::NOT_FOUND, "no job j1"));
  GetJobRequest request;
  request.set_id("j1");
  EXPECT_THAT(client().GetJob(request), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(OwnGrpcTest, InMemoryBackendAnswersUnscriptedCalls) {
  descarteslabs::workflows::CreateJobRequest create;
  create.set_serialized_graft("{\"returns\": 1}");
  create.set_channel("v0-19");
  auto job = client().CreateJob(create);
  ASSERT_THAT(job, IsOk());
  GetJobRequest request;
  request.set_id(job->id());
  EXPECT_THAT(client().GetJob(request), IsOk());
}

TEST(OwnGrpcMockTest, GeneratedClientMockCompilesAndRuns) {
  MockSubmitterStub stub;
  EXPECT_CALL(stub, Submit(_, _, _)).WillOnce(Return(grpc::Status::OK));
  grpc::ClientContext context;
  descarteslabs::workflows::Job job;
  EXPECT_TRUE(stub.Submit(&context, {}, &job).ok());
}

}  // namespace
}  // namespace own_grpc
