// The cookbook's examples (docs/cookbook.md), each a test: streams that
// break, health transitions and golden journals. Timeouts, certificates,
// auth and retries have their own files next to this one.

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::CreateJobRequest;
using ::descarteslabs::workflows::GetWorkflowRequest;
using ::descarteslabs::workflows::Job;
using ::descarteslabs::workflows::UpsertWorkflowRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::DoDefault;
using testing::IsOk;
using testing::IsOkAndHolds;
using ::testing::SizeIs;
using testing::StatusIs;
using testing::StreamThenFail;

class CookbookTest : public testing::WorkflowsTest {};

// A WatchJob stream that breaks half-way: the client re-opens it and still
// sees the job finish.
TEST_F(CookbookTest, BrokenWatchStreamIsReopened) {
  CreateJobRequest create;
  create.set_serialized_graft("{\"returns\": 1}");
  auto job = client().CreateJob(create);
  ASSERT_THAT(job, IsOk());
  Job::State queued;
  queued.set_stage(Job::QUEUED);
  EXPECT_CALL(backend(), WatchJob)
      .WillOnce(StreamThenFail(
          std::vector<Job::State>{queued},
          grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection reset")))
      .WillRepeatedly(DoDefault());  // later watches: the in-memory backend

  auto done = client().WaitForJob(job->id(), absl::Minutes(5),
                                  {.on_state = [&](const Job::State&) {
                                    clock().AdvanceBy(absl::Seconds(1));
                                  }});

  EXPECT_THAT(done, IsOk());
  EXPECT_EQ(done->stage(), Job::SUCCEEDED);
  // The journal records a call when the server finishes it, which can be a
  // moment after the client has what it needs: wait for it, don't sleep.
  EXPECT_THAT(journal().WaitForCalls("WatchJob", 2, absl::Seconds(10)), IsOk());
}

// Health as a load balancer or probe sees it, through NOT_SERVING and back.
TEST_F(CookbookTest, HealthTransitions) {
  EXPECT_THAT(client().Health(), IsOkAndHolds(HealthCheckResponse::SERVING));

  server().SetHealth("", HealthCheckResponse::NOT_SERVING);
  EXPECT_THAT(client().Health(),
              IsOkAndHolds(HealthCheckResponse::NOT_SERVING));

  server().SetHealth("", HealthCheckResponse::UNKNOWN);
  EXPECT_THAT(client().Health(), IsOkAndHolds(HealthCheckResponse::UNKNOWN));

  server().SetHealth("", HealthCheckResponse::SERVING);
  EXPECT_THAT(client().Health(), IsOkAndHolds(HealthCheckResponse::SERVING));
}

// The calls a piece of code makes, compared with a golden textproto. The
// deterministic dump leaves out times, peers and ports.
TEST_F(CookbookTest, GoldenJournal) {
  UpsertWorkflowRequest upsert;
  upsert.set_id("ci@example.com:ndvi");
  upsert.set_title("NDVI");
  auto* graft = upsert.add_versioned_grafts();
  graft->set_version("1.0.0");
  graft->set_serialized_graft("{\"returns\": 1}");
  ASSERT_THAT(client().UpsertWorkflow(upsert), IsOk());
  GetWorkflowRequest get;
  get.set_id("ci@example.com:missing");
  ASSERT_THAT(client().GetWorkflow(get), StatusIs(absl::StatusCode::kNotFound));

  const std::string actual = journal().ToTextProto({.deterministic = true});

  // To accept a deliberate change: UPDATE_GOLDEN=1 bazel run
  // //tests:cookbook_test -- --gtest_filter='*GoldenJournal'
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (std::getenv("UPDATE_GOLDEN") != nullptr && workspace != nullptr) {
    std::ofstream(std::string(workspace) +
                  "/tests/testdata/golden_journal.textproto")
        << actual;
    GTEST_SKIP() << "golden file rewritten";
  }
  std::ifstream golden_file("tests/testdata/golden_journal.textproto");
  ASSERT_TRUE(golden_file.good()) << "missing golden file; actual:\n" << actual;
  std::stringstream golden;
  golden << golden_file.rdbuf();
  EXPECT_EQ(actual, golden.str())
      << "journal differs from tests/testdata/golden_journal.textproto";
}

}  // namespace
}  // namespace workflows
