// A job that fails, a stream that breaks, and server warnings, as the caller
// sees them.

#include "client/errors.h"
#include "fake_server/job_progression.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::CreateJobRequest;
using ::descarteslabs::workflows::ERROR_OOM;
using ::descarteslabs::workflows::GetWorkflowRequest;
using ::descarteslabs::workflows::Job;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::ReplyText;
using testing::StatusIs;
using testing::WithWarnings;

class JobsAndWarningsTest : public testing::WorkflowsTest {};

TEST_F(JobsAndWarningsTest, JobFailedWithOomMapsToTheJobError) {
  in_memory().SetNextJobProgression(fake::JobProgression::FailIn(
      Job::RUNNING, ERROR_OOM, "worker exceeded 8 GiB"));
  CreateJobRequest request;
  request.set_serialized_graft("{\"returns\": 1}");
  auto job = client().CreateJob(request);
  ASSERT_THAT(job, IsOk());

  // WaitForJob watches the stream; the job progresses as virtual time moves.
  absl::StatusOr<Job::State> done = client().WaitForJob(
      job->id(), absl::Minutes(1), {.on_state = [&](const Job::State&) {
        clock().AdvanceBy(absl::Seconds(1));
      }});

  EXPECT_THAT(done, StatusIs(JobErrorStatusCode(ERROR_OOM),
                             HasSubstr("code=ERROR_OOM")));
  EXPECT_EQ(JobErrorCode(done.status()), ERROR_OOM);
}

TEST_F(JobsAndWarningsTest, WarningsHeaderReachesTheCaller) {
  EXPECT_CALL(backend(), GetWorkflow)
      .WillOnce(WithWarnings({"channel v0-19 is deprecated", "slow down"},
                             ReplyText("id: 'a@b.c:w'")));
  GetWorkflowRequest request;
  request.set_id("a@b.c:w");

  auto workflow = client().GetWorkflow(request);

  ASSERT_THAT(workflow, IsOk());
  EXPECT_THAT(workflow.warnings(),
              ElementsAre("channel v0-19 is deprecated", "slow down"));
}

}  // namespace
}  // namespace workflows
