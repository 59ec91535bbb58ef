#ifndef WORKFLOWS_TESTING_FAILURES_H_
#define WORKFLOWS_TESTING_FAILURES_H_

// FailuresIn runs code and returns the messages of the gtest failures it
// reported, on any thread, in order, without failing the test that runs it:
// for tests of what the kit itself reports (gMock's uninteresting calls, a
// failed wait, a matcher's explanation).
//
//   const std::vector<std::string> failures = FailuresIn([&] {
//     EXPECT_TRUE(WaitForCalls(server(), "GetJob", 3, absl::ZeroDuration()));
//   });
//   EXPECT_THAT(failures, ElementsAre(HasSubstr("saw 0")));
//
// A failure reported on a server thread must be ordered before the read by a
// journal wait inside `body` (docs/design.md, ThreadSanitizer).

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"

namespace workflows {
namespace testing {

inline std::vector<std::string> FailuresIn(const std::function<void()>& body) {
  ::testing::TestPartResultArray results;
  {
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS,
        &results);
    body();
  }
  std::vector<std::string> messages;
  for (int i = 0; i < results.size(); ++i) {
    messages.push_back(results.GetTestPartResult(i).message());
  }
  return messages;
}

}  // namespace testing
}  // namespace workflows

#endif  // WORKFLOWS_TESTING_FAILURES_H_
