// 1,000 gtest tests, each a whole WorkflowsTest: fake server start, client
// connect, one GetJob through the client, teardown. bench/run.sh runs this
// binary and reports the suite's wall time, the number a downstream user
// feels when a test file grows to a thousand fixture-based cases.
//
// It is a benchmark, not a test: run it with bench/run.sh (or directly; it
// is an ordinary gtest binary and fails if any call fails).

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;

class ThousandFixtureTests : public testing::WorkflowsTest,
                             public ::testing::WithParamInterface<int> {};

TEST_P(ThousandFixtureTests, OneGetJob) {
  Job job;
  job.set_serialized_graft("{\"x\": [\"code\", 1]}");
  const std::string id = in_memory().PutJob(job);
  GetJobRequest request;
  request.set_id(id);
  EXPECT_THAT(client().GetJob(request),
              testing::IsOkAndHolds(::testing::Property(&Job::id, id)));
}

INSTANTIATE_TEST_SUITE_P(Cases, ThousandFixtureTests,
                         ::testing::Range(0, 1000));

}  // namespace
}  // namespace workflows
