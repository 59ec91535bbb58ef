// Library warnings reach the sink the user installed (workflows::
// SetWarningSink), not stderr: the client's x-wf-warnings and the fake
// server's notes on scripts it cannot follow.

#include "client/warning_sink.h"

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::GetWorkflowRequest;
using ::descarteslabs::workflows::Job;
using ::descarteslabs::workflows::WatchJobRequest;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::IsOk;
using testing::ReplyText;
using testing::WithWarnings;

// Collects warnings from any thread.
class Captured {
 public:
  WarningSink Sink() {
    return [this](absl::string_view warning) {
      absl::MutexLock lock(&mu_);
      warnings_.emplace_back(warning);
    };
  }
  std::vector<std::string> warnings() {
    absl::MutexLock lock(&mu_);
    return warnings_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> warnings_;
};

class WarningSinkTest : public testing::WorkflowsTest {};

TEST_F(WarningSinkTest, ClientWarningsOfAUnaryCallReachTheSink) {
  EXPECT_CALL(backend(), GetWorkflow)
      .WillOnce(WithWarnings({"channel v0-19 is deprecated"},
                             ReplyText("id: 'a@b.c:w'")));
  GetWorkflowRequest request;
  request.set_id("a@b.c:w");
  Captured captured;
  ScopedWarningSink scoped(captured.Sink());

  auto workflow = client().GetWorkflow(request);

  ASSERT_THAT(workflow, IsOk());
  EXPECT_THAT(captured.warnings(),
              ElementsAre("Workflows warning (GetWorkflow): channel v0-19 is "
                          "deprecated"));
}

TEST_F(WarningSinkTest, ClientWarningsOfAStreamReachTheSink) {
  Job::State queued;
  queued.set_stage(Job::QUEUED);
  EXPECT_CALL(backend(), WatchJob)
      .WillOnce(WithWarnings(
          {"slow down"},
          testing::StreamMessages(std::vector<Job::State>{queued})));
  WatchJobRequest request;
  request.set_id("j1");
  Captured captured;
  ScopedWarningSink scoped(captured.Sink());

  auto states = client().WatchJob(request);
  Job::State state;
  while (states->Next(&state)) {
  }

  ASSERT_THAT(states->Finish(), IsOk());
  EXPECT_THAT(captured.warnings(),
              ElementsAre("Workflows warning (WatchJob): slow down"));
}

TEST_F(WarningSinkTest, FakeServerNotesReachTheSink) {
  Job::State queued;
  queued.set_stage(Job::QUEUED);
  // Initial metadata after the first message cannot be sent; the server
  // says so and carries on.
  EXPECT_CALL(backend(), WatchJob)
      .WillOnce([queued](fake::CallContext* call, const WatchJobRequest&,
                         fake::ServerStream<Job::State>* stream) {
        stream->Write(queued);
        call->AddInitialMetadata("x-too-late", "1");
        return grpc::Status::OK;
      });
  WatchJobRequest request;
  request.set_id("j1");
  Captured captured;
  ScopedWarningSink scoped(captured.Sink());

  auto states = client().WatchJob(request);
  Job::State state;
  while (states->Next(&state)) {
  }

  ASSERT_THAT(states->Finish(), IsOk());
  EXPECT_THAT(captured.warnings(),
              ElementsAre(HasSubstr("initial metadata x-too-late added after "
                                    "the first message was sent; ignored")));
}

}  // namespace
}  // namespace workflows
