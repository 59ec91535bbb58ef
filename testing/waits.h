#ifndef WORKFLOWS_TESTING_WAITS_H_
#define WORKFLOWS_TESTING_WAITS_H_

// Waits on a fake server's journal that explain themselves in gtest: each
// returns a ::testing::AssertionResult whose failure message says what the
// server saw instead (calls per method, calls still in flight), or that the
// method name is wrong. Use them with ASSERT_TRUE / EXPECT_TRUE:
//
//   client_under_test.StartPolling();
//   ASSERT_TRUE(WaitForCalls(server(), "GetJob", 3, absl::Seconds(5)));
//   // Failure: "Value of: WaitForCalls(server(), "GetJob", 3, ...)
//   //   Actual: false (waiting for 3 calls to GetJob: saw 1 call to
//   //   /descarteslabs.workflows.JobAPI/GetJob x1 ...)"
//   ASSERT_TRUE(WaitForInFlight(server(), "WatchJob", 1, absl::Seconds(5)));
//
// They wrap fake::Journal's waits, which return absl::Status (the fake server
// knows nothing of gtest). Timeouts are real time: a wait returns as soon as
// the calls are there, so a generous timeout costs nothing when the test
// passes. Method names are as in Journal ("GetJob", "JobAPI/GetJob" or the
// full path); an unknown name fails at once, listing the valid ones.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/journal.h"
#include "gtest/gtest.h"

namespace workflows {
namespace testing {
namespace waits_internal {

inline ::testing::AssertionResult ToAssertion(const absl::Status& status,
                                              const std::string& what) {
  if (status.ok()) return ::testing::AssertionSuccess() << what;
  return ::testing::AssertionFailure()
         << what << ": " << absl::StatusCodeToString(status.code()) << ": "
         << status.message();
}

inline std::string Calls(int64_t n, absl::string_view method) {
  return absl::StrCat(n, n == 1 ? " call" : " calls", " to ", method);
}

}  // namespace waits_internal

// Succeeds once at least `n` calls to `method` have ended (since the last
// Journal::Clear()); fails after `timeout` saying which calls were seen.
inline ::testing::AssertionResult WaitForCalls(const fake::Journal& journal,
                                               absl::string_view method,
                                               int64_t n,
                                               absl::Duration timeout) {
  return waits_internal::ToAssertion(
      journal.WaitForCalls(method, n, timeout),
      absl::StrCat("waiting for ", waits_internal::Calls(n, method)));
}
inline ::testing::AssertionResult WaitForCalls(
    fake::FakeWorkflowsServer& server, absl::string_view method, int64_t n,
    absl::Duration timeout) {
  return WaitForCalls(server.journal(), method, n, timeout);
}

// Succeeds once at least `n` calls to `method` are in flight at once (e.g.
// hanging): the calls have reached the server.
inline ::testing::AssertionResult WaitForInFlight(const fake::Journal& journal,
                                                  absl::string_view method,
                                                  int64_t n,
                                                  absl::Duration timeout) {
  return waits_internal::ToAssertion(
      journal.WaitForInFlight(method, n, timeout),
      absl::StrCat("waiting for ", waits_internal::Calls(n, method),
                   " in flight"));
}
inline ::testing::AssertionResult WaitForInFlight(
    fake::FakeWorkflowsServer& server, absl::string_view method, int64_t n,
    absl::Duration timeout) {
  return WaitForInFlight(server.journal(), method, n, timeout);
}

// Succeeds once no call is in flight; fails naming the calls still running.
inline ::testing::AssertionResult WaitUntilIdle(const fake::Journal& journal,
                                                absl::Duration timeout) {
  return waits_internal::ToAssertion(journal.WaitUntilIdle(timeout),
                                     "waiting until no call is in flight");
}
inline ::testing::AssertionResult WaitUntilIdle(
    fake::FakeWorkflowsServer& server, absl::Duration timeout) {
  return WaitUntilIdle(server.journal(), timeout);
}

// WaitForCalls for the calls of one session (x-fake-session).
inline ::testing::AssertionResult WaitForSessionCalls(
    const fake::Journal& journal, absl::string_view session,
    absl::string_view method, int64_t n, absl::Duration timeout) {
  return waits_internal::ToAssertion(
      journal.WaitForSessionCalls(session, method, n, timeout),
      absl::StrCat("waiting for ", waits_internal::Calls(n, method),
                   " in session \"", session, "\""));
}
inline ::testing::AssertionResult WaitForSessionCalls(
    fake::FakeWorkflowsServer& server, absl::string_view session,
    absl::string_view method, int64_t n, absl::Duration timeout) {
  return WaitForSessionCalls(server.journal(), session, method, n, timeout);
}

}  // namespace testing
}  // namespace workflows

#endif  // WORKFLOWS_TESTING_WAITS_H_
