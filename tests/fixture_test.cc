// The fixture's own guarantees: teardown names RPCs left running, and
// ScopedDefaultClient installs and clears the default client.

#include <memory>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/matchers.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::GetJobRequest;
using testing::HangUntilDeadline;
using testing::IsOk;
using testing::ScopedDefaultClient;

testing::WorkflowsTestOptions ShortGrace() {
  testing::WorkflowsTestOptions options;
  options.teardown_grace = absl::Milliseconds(10);
  return options;
}

class FixtureTest : public testing::WorkflowsTest {
 protected:
  FixtureTest() : testing::WorkflowsTest(ShortGrace()) {}
};

TEST_F(FixtureTest, TeardownFailsTheTestNamingRpcsLeftInFlight) {
  EXPECT_CALL(backend(), GetJob).WillOnce(HangUntilDeadline());
  std::thread caller([this] {
    GetJobRequest request;
    request.set_id("j1");
    // Ends when TearDown shuts the server down.
    client().GetJob(
        request, {.timeout = absl::Seconds(60), .retry = RetryPolicy::None()});
  });
  ASSERT_THAT(journal().WaitForInFlight("GetJob", 1, absl::Seconds(10)),
              IsOk());

  EXPECT_NONFATAL_FAILURE(
      TearDown(),
      "RPCs still in flight when the test ended (after waiting 10ms); the "
      "server will cancel them: /descarteslabs.workflows.JobAPI/GetJob");
  caller.join();
}

TEST_F(FixtureTest, ScopedDefaultClientInstallsAndClears) {
  Client::SetDefaultClient(nullptr);
  {
    ScopedDefaultClient scoped(shared_client());
    EXPECT_EQ(Client::GetDefaultClient(), shared_client());
  }
  EXPECT_NE(Client::GetDefaultClient(), shared_client());
  Client::SetDefaultClient(nullptr);
}

TEST_F(FixtureTest, ScopedDefaultClientRestoresThePreviousDefault) {
  auto outer = std::make_shared<Client>(ClientOptions{});
  Client::SetDefaultClient(outer);
  {
    ScopedDefaultClient scoped(shared_client());
    EXPECT_EQ(Client::GetDefaultClient(), shared_client());
    {
      auto inner = std::make_shared<Client>(ClientOptions{});
      ScopedDefaultClient nested(inner);
      EXPECT_EQ(Client::GetDefaultClient(), inner);
    }
    EXPECT_EQ(Client::GetDefaultClient(), shared_client());
  }
  EXPECT_EQ(Client::GetDefaultClient(), outer);
  Client::SetDefaultClient(nullptr);
}

}  // namespace
}  // namespace workflows
