// Threads that share plain data guarded ONLY by abseil synchronization. Under
// --config=tsan this passes only if ThreadSanitizer sees abseil's
// happens-before edges (tools/tsan/absl_annotations.cc); in other builds it
// still checks the layout assumptions the shim relies on.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/tsan/absl_layout.h"

extern "C" int WorkflowsTsanAbslAnnotationsLinked() __attribute__((weak));
extern "C" int WorkflowsTsanAbslInterposes(const char* mangled)
    __attribute__((weak));

namespace workflows::tsan {
namespace {

constexpr int kThreads = 4;
constexpr int kIterations = 200;

TEST(TsanAbslLayoutTest, NotifiedFlagIsTheNotificationState) {
  absl::Notification notification;
  const std::atomic<bool>* flag = NotifiedFlag(notification);
  EXPECT_FALSE(flag->load());
  notification.Notify();
  EXPECT_TRUE(flag->load());

  absl::Notification prenotified(true);
  EXPECT_TRUE(NotifiedFlag(prenotified)->load());
}

TEST(TsanAbslLayoutTest, HeldMutexTracksReleasableMutexLock) {
  absl::Mutex mu;
  absl::ReleasableMutexLock lock(&mu);
  EXPECT_EQ(HeldMutex(lock), &mu);
  mu.AssertHeld();
  lock.Release();
  EXPECT_EQ(HeldMutex(lock), nullptr);
  mu.AssertNotHeld();
}

TEST(TsanAbslAnnotationsTest, LinkedIntoThreadSanitizerBuilds) {
#if defined(__SANITIZE_THREAD__)
  int (*linked)() = &WorkflowsTsanAbslAnnotationsLinked;
  ASSERT_TRUE(linked != nullptr)
      << "--config=tsan must link //tools/tsan:absl_annotations "
         "(--custom_malloc in .bazelrc)";
  EXPECT_EQ(linked(), 1);
#else
  GTEST_SKIP() << "not a ThreadSanitizer build";
#endif
}

// Debian's libgpr/libgrpc/libgrpc++ lock their absl::Mutexes (gpr_mu,
// grpc_core::Mutex) and wait on absl::CondVars through these symbols: unless
// the dynamic linker resolves them to the shim, TSan misses every hand-off
// gRPC makes between its threads (tools/tsan/tsan.supp).
TEST(TsanAbslAnnotationsTest, DebianLibraryCallsAreAnnotatedToo) {
#if defined(__SANITIZE_THREAD__)
  ASSERT_TRUE(&WorkflowsTsanAbslInterposes != nullptr);
  // Every symbol --config=tsan exports (tools/tsan/exported_symbols.bzl).
  for (const char* mangled : {
#include "tools/tsan/exported_symbols.inc"
       }) {
    EXPECT_EQ(WorkflowsTsanAbslInterposes(mangled), 1)
        << mangled << " is not exported from the executable "
        << "(linkopts of //tools/tsan:annotations)";
  }
#else
  GTEST_SKIP() << "not a ThreadSanitizer build";
#endif
}

TEST(TsanAbslAnnotationsTest, MutexLockGuardsAMap) {
  absl::Mutex mu;
  std::map<int, std::string> values;  // Guarded by mu.
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kIterations; ++i) {
        absl::MutexLock lock(&mu);
        values[t * kIterations + i] = std::to_string(i);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(values.size(), kThreads * kIterations);
}

TEST(TsanAbslAnnotationsTest, ReaderLocksSeeWriterUpdates) {
  absl::Mutex mu;
  std::vector<int> values;  // Guarded by mu.
  std::atomic<int> reads{0};
  std::thread writer([&] {
    for (int i = 0; i < kIterations; ++i) {
      absl::WriterMutexLock lock(&mu);
      values.push_back(i);
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < kThreads; ++t) {
    readers.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        absl::ReaderMutexLock lock(&mu);
        if (!values.empty()) {
          EXPECT_LE(values.back(), kIterations);
        }
        reads.fetch_add(1);
      }
    });
  }
  writer.join();
  for (auto& reader : readers) reader.join();
  EXPECT_EQ(reads.load(), kThreads * kIterations);
  absl::ReaderMutexLock lock(&mu);
  EXPECT_EQ(values.size(), kIterations);
}

TEST(TsanAbslAnnotationsTest, TryLockAndReleasableMutexLock) {
  absl::Mutex mu;
  int counter = 0;  // Guarded by mu.
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        if (mu.TryLock()) {
          ++counter;
          mu.Unlock();
        } else {
          absl::ReleasableMutexLock lock(&mu);
          ++counter;
          lock.Release();
        }
        if (mu.ReaderTryLock()) {
          EXPECT_GT(counter, 0);
          mu.ReaderUnlock();
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(counter, kThreads * kIterations);
}

// A producer/consumer queue: the consumer sleeps in CondVar::Wait, which
// drops and retakes the mutex inside the uninstrumented library.
TEST(TsanAbslAnnotationsTest, CondVarHandsOverData) {
  absl::Mutex mu;
  absl::CondVar changed;
  std::vector<std::string> queue;  // Guarded by mu.
  bool done = false;               // Guarded by mu.
  std::vector<std::string> consumed;
  std::thread consumer([&] {
    absl::MutexLock lock(&mu);
    while (true) {
      while (queue.empty() && !done) changed.Wait(&mu);
      if (queue.empty()) break;
      consumed.push_back(std::move(queue.front()));
      queue.erase(queue.begin());
    }
  });
  for (int i = 0; i < kIterations; ++i) {
    absl::MutexLock lock(&mu);
    queue.push_back("item " + std::to_string(i));
    changed.Signal();
  }
  {
    absl::MutexLock lock(&mu);
    done = true;
    changed.SignalAll();
  }
  consumer.join();
  ASSERT_EQ(consumed.size(), kIterations);
  EXPECT_EQ(consumed.back(), "item " + std::to_string(kIterations - 1));
}

TEST(TsanAbslAnnotationsTest, CondVarWaitWithTimeoutAndDeadline) {
  absl::Mutex mu;
  absl::CondVar changed;
  int stage = 0;  // Guarded by mu.
  std::thread other([&] {
    absl::MutexLock lock(&mu);
    while (stage != 1) changed.WaitWithTimeout(&mu, absl::Seconds(60));
    stage = 2;
    changed.Signal();
  });
  {
    absl::MutexLock lock(&mu);
    stage = 1;
    changed.Signal();
    while (stage != 2) {
      changed.WaitWithDeadline(&mu, absl::Now() + absl::Seconds(60));
    }
  }
  other.join();
  absl::MutexLock lock(&mu);
  EXPECT_EQ(stage, 2);
}

// Conditions are evaluated by the library, possibly on the unlocking thread.
TEST(TsanAbslAnnotationsTest, AwaitAndLockWhen) {
  absl::Mutex mu;
  std::map<std::string, int> state;  // Guarded by mu.
  auto has = [&](const std::string& key) {
    return [&state, key] { return state.count(key) > 0; };
  };
  std::thread worker([&] {
    auto ready = has("ready");
    mu.LockWhen(absl::Condition(&ready));
    state["ack"] = state["ready"] + 1;
    mu.Unlock();
    auto go = has("go");
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&go));
    state["gone"] = state["go"];
  });
  {
    absl::MutexLock lock(&mu);
    state["ready"] = 41;
    auto ack = has("ack");
    mu.Await(absl::Condition(&ack));
    EXPECT_EQ(state["ack"], 42);
    state["go"] = 7;
  }
  auto gone = has("gone");
  ASSERT_TRUE(
      mu.LockWhenWithTimeout(absl::Condition(&gone), absl::Seconds(60)));
  EXPECT_EQ(state["gone"], 7);
  mu.Unlock();
  worker.join();
}

TEST(TsanAbslAnnotationsTest, TimedAwaitAndReaderLockWhen) {
  absl::Mutex mu;
  int value = 0;  // Guarded by mu.
  std::thread writer([&] {
    absl::MutexLock lock(&mu);
    value = 1;
    auto two = [&] { return value == 2; };
    EXPECT_TRUE(mu.AwaitWithTimeout(absl::Condition(&two), absl::Seconds(60)));
    value = 3;
  });
  auto one = [&] { return value == 1; };
  mu.ReaderLockWhen(absl::Condition(&one));
  EXPECT_EQ(value, 1);
  mu.ReaderUnlock();
  {
    absl::MutexLock lock(&mu);
    value = 2;
  }
  auto two_or_more = [&] { return value >= 2; };
  ASSERT_TRUE(mu.ReaderLockWhenWithTimeout(absl::Condition(&two_or_more),
                                           absl::Seconds(60)));
  EXPECT_GE(value, 2);
  mu.ReaderUnlock();
  auto three = [&] { return value == 3; };
  ASSERT_TRUE(mu.ReaderLockWhenWithDeadline(absl::Condition(&three),
                                            absl::Now() + absl::Seconds(60)));
  EXPECT_EQ(value, 3);
  mu.ReaderUnlock();
  writer.join();
  // A timed wait that times out still returns holding the mutex.
  mu.Lock();
  auto never = [] { return false; };
  EXPECT_FALSE(mu.AwaitWithDeadline(absl::Condition(&never),
                                    absl::Now() + absl::Milliseconds(5)));
  value = 4;
  mu.Unlock();
  EXPECT_FALSE(mu.LockWhenWithDeadline(absl::Condition(&never),
                                       absl::Now() + absl::Milliseconds(5)));
  EXPECT_EQ(value, 4);
  mu.Unlock();
}

TEST(TsanAbslAnnotationsTest, NotificationPublishesData) {
  std::vector<std::string> payload;
  absl::Notification ready;
  std::thread producer([&] {
    payload = {"a", "b", "c"};
    ready.Notify();
  });
  ready.WaitForNotification();
  EXPECT_THAT(payload, testing::ElementsAre("a", "b", "c"));
  producer.join();
}

TEST(TsanAbslAnnotationsTest, NotificationTimedWaits) {
  std::string first;
  std::string second;
  absl::Notification first_ready;
  absl::Notification second_ready;
  std::thread producer([&] {
    first = "first";
    first_ready.Notify();
    second = "second";
    second_ready.Notify();
  });
  ASSERT_TRUE(first_ready.WaitForNotificationWithTimeout(absl::Seconds(60)));
  EXPECT_EQ(first, "first");
  ASSERT_TRUE(second_ready.WaitForNotificationWithDeadline(absl::Now() +
                                                           absl::Seconds(60)));
  EXPECT_EQ(second, "second");
  producer.join();
}

// HasBeenNotified() is inline: an acquire-load of the state Notify() writes.
TEST(TsanAbslAnnotationsTest, HasBeenNotifiedPublishesData) {
  std::map<int, int> payload;
  absl::Notification ready;
  std::thread producer([&] {
    for (int i = 0; i < kIterations; ++i) payload[i] = i * i;
    ready.Notify();
  });
  // Spinning is the point here: no other synchronization may exist.
  while (!ready.HasBeenNotified()) std::this_thread::yield();
  EXPECT_EQ(payload.size(), kIterations);
  EXPECT_EQ(payload[kIterations - 1], (kIterations - 1) * (kIterations - 1));
  producer.join();
}

TEST(TsanAbslAnnotationsTest, BlockingCounterPublishesWork) {
  std::vector<std::string> results(kThreads);  // Slot t written by thread t.
  absl::BlockingCounter done(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      results[t] = "result " + std::to_string(t);
      done.DecrementCount();
    });
  }
  done.Wait();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(results[t], "result " + std::to_string(t));
  }
  for (auto& thread : threads) thread.join();
}

// Memory that held one mutex can hold another (destroy resets TSan's state).
TEST(TsanAbslAnnotationsTest, MutexesComeAndGo) {
  for (int round = 0; round < 20; ++round) {
    auto mu = std::make_unique<absl::Mutex>();
    int count = 0;  // Guarded by *mu.
    std::thread other([&] {
      absl::MutexLock lock(mu.get());
      ++count;
    });
    {
      absl::MutexLock lock(mu.get());
      ++count;
    }
    other.join();
    absl::MutexLock lock(mu.get());
    EXPECT_EQ(count, 2);
  }
}

}  // namespace
}  // namespace workflows::tsan
