// Builds and exercises code generated in this workspace from a proto that
// imports the Workflows API from the external repository.

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/job.pb.h"
#include "runner/submission.grpc.pb.h"
#include "runner/submission_mock.grpc.pb.h"

namespace {

using ::testing::_;
using ::testing::DoAll;
using ::testing::Return;
using ::testing::SetArgPointee;

TEST(SubmissionProtoTest, CarriesWorkflowsMessages) {
  consumer::SubmitRequest request;
  request.mutable_job()->set_serialized_graft("{}");
  request.set_requested_by("ci");
  std::string wire;
  ASSERT_TRUE(request.SerializeToString(&wire));
  consumer::SubmitRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.job().serialized_graft(), "{}");
  EXPECT_EQ(parsed.requested_by(), "ci");
}

TEST(SubmissionProtoTest, GeneratedMockStubWorks) {
  consumer::MockSubmitterStub stub;
  descarteslabs::workflows::Job job;
  job.set_id("job-1");
  job.mutable_state()->set_stage(descarteslabs::workflows::Job::QUEUED);
  EXPECT_CALL(stub, Submit(_, _, _))
      .WillOnce(DoAll(SetArgPointee<2>(job), Return(grpc::Status::OK)));

  grpc::ClientContext context;
  descarteslabs::workflows::Job response;
  EXPECT_TRUE(stub.Submit(&context, consumer::SubmitRequest(), &response).ok());
  EXPECT_EQ(response.id(), "job-1");
  EXPECT_EQ(response.state().stage(), descarteslabs::workflows::Job::QUEUED);
}

TEST(SubmissionProtoTest, HealthProtoFromDebian) {
  grpc::health::v1::HealthCheckResponse response;
  response.set_status(grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
