#include "client/warning_sink.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace {

using ::testing::ElementsAre;

// What `write` sends to stderr (file descriptor 2).
std::string StderrOf(void (*write)()) {
  std::fflush(stderr);
  std::FILE* capture = std::tmpfile();
  const int saved = dup(2);
  dup2(fileno(capture), 2);
  write();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::string text;
  std::rewind(capture);
  for (int c = std::fgetc(capture); c != EOF; c = std::fgetc(capture)) {
    text.push_back(static_cast<char>(c));
  }
  std::fclose(capture);
  return text;
}

TEST(WarningSinkTest, ScopedSinkCapturesAndRestoresThePreviousSink) {
  std::vector<std::string> outer;
  std::vector<std::string> inner;
  {
    ScopedWarningSink capture_outer(
        [&outer](absl::string_view w) { outer.emplace_back(w); });
    EmitWarning("one");
    {
      ScopedWarningSink capture_inner(
          [&inner](absl::string_view w) { inner.emplace_back(w); });
      EmitWarning("two");
    }
    EmitWarning("three");
  }
  EXPECT_THAT(outer, ElementsAre("one", "three"));
  EXPECT_THAT(inner, ElementsAre("two"));
}

TEST(WarningSinkTest, SetReturnsThePreviousSinkAndEmptyRestoresStderr) {
  std::vector<std::string> seen;
  WarningSink original =
      SetWarningSink([&seen](absl::string_view w) { seen.emplace_back(w); });
  ASSERT_TRUE(original != nullptr);
  EmitWarning("captured");
  WarningSink mine = SetWarningSink(nullptr);  // back to stderr
  ASSERT_TRUE(mine != nullptr);
  mine("called directly");

  EXPECT_EQ(StderrOf([] { EmitWarning("to stderr"); }), "to stderr\n");

  EXPECT_THAT(seen, ElementsAre("captured", "called directly"));
  SetWarningSink(std::move(original));
}

TEST(WarningSinkTest, DefaultSinkWritesOneLineToStderr) {
  WarningSink previous = SetWarningSink(nullptr);
  EXPECT_EQ(
      StderrOf([] { EmitWarning("Workflows warning (GetJob): slow down"); }),
      "Workflows warning (GetJob): slow down\n");
  SetWarningSink(std::move(previous));
}

TEST(WarningSinkTest, SinkMayReplaceItself) {
  std::vector<std::string> seen;
  WarningSink previous = SetWarningSink([&seen](absl::string_view w) {
    seen.emplace_back(w);
    SetWarningSink([&seen](absl::string_view w) {
      seen.push_back("second: " + std::string(w));
    });
  });
  EmitWarning("a");
  EmitWarning("b");
  SetWarningSink(std::move(previous));
  EXPECT_THAT(seen, ElementsAre("a", "second: b"));
}

TEST(WarningSinkTest, ConcurrentEmitAndReplaceLoseNothing) {
  absl::Mutex mu;
  int first_count = 0;
  int second_count = 0;
  WarningSink previous = SetWarningSink([&](absl::string_view) {
    absl::MutexLock lock(&mu);
    ++first_count;
  });
  constexpr int kThreads = 4;
  constexpr int kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < kPerThread; ++i) EmitWarning("w");
    });
  }
  SetWarningSink([&](absl::string_view) {
    absl::MutexLock lock(&mu);
    ++second_count;
  });
  for (std::thread& thread : threads) thread.join();
  SetWarningSink(std::move(previous));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(first_count + second_count, kThreads * kPerThread);
}

}  // namespace
}  // namespace workflows
