// The mock backend's actions as the real client sees them over the wire:
// a short Delay before the answer, a stream of several messages, and rich
// error details in grpc-status-details-bin.

#include "testing/actions.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/client.h"
#include "client/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/rpc_status.pb.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;
using ::descarteslabs::workflows::WatchJobRequest;
using testing::Delay;
using ::testing::ElementsAre;
using testing::EqualsProto;
using testing::IsOk;
using testing::IsOkAndHolds;
using testing::ReplyText;
using testing::ReturnWithDetails;
using testing::StatusIs;
using testing::StreamMessages;

class ActionsOverTheWireTest : public testing::WorkflowsTest {};

TEST_F(ActionsOverTheWireTest, DelayShorterThanTheDeadlineThenAnswers) {
  // 1 ms against the client's 5 s default deadline: the inner action runs.
  EXPECT_CALL(backend(), GetJob)
      .WillOnce(Delay(absl::Milliseconds(1),
                      ReplyText("id: 'j1' state { stage: SUCCEEDED }")));
  GetJobRequest request;
  request.set_id("j1");

  EXPECT_THAT(client().GetJob(request),
              IsOkAndHolds(EqualsProto("id: 'j1' state { stage: SUCCEEDED }")));
}

TEST_F(ActionsOverTheWireTest, StreamMessagesArriveInOrderThenOk) {
  std::vector<Job::State> states(3);
  states[0].set_stage(Job::QUEUED);
  states[1].set_stage(Job::RUNNING);
  states[2].set_stage(Job::SUCCEEDED);
  EXPECT_CALL(backend(), WatchJob).WillOnce(StreamMessages(states));
  WatchJobRequest request;
  request.set_id("j1");
  std::vector<Job::State> received;

  const absl::Status status =
      client().WatchJob(request, [&](const Job::State& state) {
        received.push_back(state);
        return true;
      });

  EXPECT_THAT(status, IsOk());
  EXPECT_THAT(received, ElementsAre(EqualsProto("stage: QUEUED"),
                                    EqualsProto("stage: RUNNING"),
                                    EqualsProto("stage: SUCCEEDED")));
}

TEST_F(ActionsOverTheWireTest, ReturnWithDetailsReachesTheClientsTrailers) {
  google::rpc::ErrorInfo info;
  info.set_reason("QUOTA_EXCEEDED");
  info.set_domain("workflows.descarteslabs.com");
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(7);
  EXPECT_CALL(backend(), GetJob)
      .WillOnce(ReturnWithDetails(grpc::StatusCode::FAILED_PRECONDITION,
                                  "over quota", info, retry));
  GetJobRequest request;
  request.set_id("j1");

  const absl::Status status =
      client().GetJob(request, {.retry = RetryPolicy::None()}).status();

  ASSERT_THAT(status,
              StatusIs(absl::StatusCode::kFailedPrecondition, "over quota"));
  // gRPC carries the google.rpc.Status in the grpc-status-details-bin
  // trailer; the client keeps every trailer on the status it returns.
  const std::optional<std::string> bytes =
      GetTrailingMetadata(status, "grpc-status-details-bin");
  ASSERT_TRUE(bytes.has_value()) << status;
  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(*bytes));
  EXPECT_EQ(rich.code(),
            static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_EQ(rich.message(), "over quota");
  ASSERT_EQ(rich.details_size(), 2);
  google::rpc::ErrorInfo got_info;
  ASSERT_TRUE(rich.details(0).UnpackTo(&got_info));
  EXPECT_THAT(got_info, EqualsProto(info));
  google::rpc::RetryInfo got_retry;
  ASSERT_TRUE(rich.details(1).UnpackTo(&got_retry));
  EXPECT_THAT(got_retry, EqualsProto("retry_delay { seconds: 7 }"));
}

}  // namespace
}  // namespace workflows
