// The deprecated rule generates messages, services and gMock client stubs
// for a proto that imports the kit's protos.

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/bazel_rules/legacy.grpc.pb.h"
#include "tests/bazel_rules/legacy_mock.grpc.pb.h"

namespace workflows::legacy {
namespace {

using ::testing::_;
using ::testing::DoAll;
using ::testing::Return;
using ::testing::SetArgPointee;

TEST(LegacyRuleTest, GeneratedStubMockAnswers) {
  MockResubmitterStub stub;
  descarteslabs::workflows::Job job;
  job.set_id("j1");
  EXPECT_CALL(stub, Resubmit(_, _, _))
      .WillOnce(DoAll(SetArgPointee<2>(job), Return(grpc::Status::OK)));

  grpc::ClientContext context;
  descarteslabs::workflows::Job answer;
  ASSERT_TRUE(stub.Resubmit(&context, {}, &answer).ok());
  EXPECT_EQ(answer.id(), "j1");
  EXPECT_EQ(Resubmitter::service_full_name(),
            std::string("workflows.legacy.Resubmitter"));
}

}  // namespace
}  // namespace workflows::legacy
