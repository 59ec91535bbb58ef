#include "fake_server/server_call_context.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>  // NOLINT: concurrent clients.
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"

namespace workflows {
namespace fake {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

constexpr absl::Duration kWait = absl::Seconds(30);

// What one hung call saw.
struct Outcome {
  int64_t wakeups = 0;
  absl::Duration waited;
  bool deadline_exceeded = false;
};

// A Health service whose Check hangs on a ServerCallContext until the call
// is done, as the fake's `hang` behaviour does, and records the outcome.
class HangingService : public Health::Service {
 public:
  explicit HangingService(const ShutdownSignal* shutdown)
      : shutdown_(shutdown) {}

  grpc::Status Check(grpc::ServerContext* context,
                     const HealthCheckRequest* /*request*/,
                     HealthCheckResponse* /*response*/) override {
    ServerCallContext call(context, "/grpc.health.v1.Health/Check",
                           clock_.get(), shutdown_);
    {
      absl::MutexLock lock(&mu_);
      ++waiting_;
    }
    const absl::Time start = absl::Now();
    call.WaitUntilDone(absl::InfiniteDuration());
    Outcome outcome{call.wakeups(), absl::Now() - start,
                    call.DeadlineExceeded()};
    absl::MutexLock lock(&mu_);
    outcomes_.push_back(outcome);
    return outcome.deadline_exceeded
               ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline")
               : grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
  }

  // Waits until `n` calls have started waiting; false on timeout.
  bool WaitForWaiting(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return waiting_ >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  }

  // Waits until `n` calls have ended, then returns their outcomes.
  std::vector<Outcome> WaitForOutcomes(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return outcomes_.size() >= n;
    };
    mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return outcomes_;
  }

 private:
  const ShutdownSignal* const shutdown_;
  const std::shared_ptr<Clock> clock_ = Clock::Real();
  absl::Mutex mu_;
  int waiting_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Outcome> outcomes_ ABSL_GUARDED_BY(mu_);
};

// Over TCP, as CI clients call the fake: the server learns the client's
// deadline from `grpc-timeout`.
class ServerCallContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = Health::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    shutdown_.Trigger();
    server_->Shutdown();
  }

  grpc::StatusCode CheckWithin(absl::Duration timeout) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    HealthCheckResponse response;
    return stub_->Check(&context, HealthCheckRequest(), &response).error_code();
  }

  // At most one wake-up per kDoneCheckInterval, plus the checks at the start
  // of the deadline tolerance and at the deadline and the last one: what a
  // wait that does not poll may cost. Polling every millisecond, as hung
  // calls used to, is about a hundred times as many.
  static int64_t MaxWakeups(absl::Duration waited) {
    return absl::IDivDuration(waited, kDoneCheckInterval, &waited) + 3;
  }

  ShutdownSignal shutdown_;
  HangingService service_{&shutdown_};
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Health::Stub> stub_;
};

TEST_F(ServerCallContextTest, HungCallUntilTheDeadlineDoesNotPoll) {
  EXPECT_EQ(CheckWithin(absl::Seconds(1)), grpc::StatusCode::DEADLINE_EXCEEDED);
  std::vector<Outcome> outcomes = service_.WaitForOutcomes(1);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].deadline_exceeded);
  EXPECT_LE(outcomes[0].wakeups, MaxWakeups(outcomes[0].waited))
      << "waited " << outcomes[0].waited;
}

TEST_F(ServerCallContextTest, ClientDeadlineIsDeadlineExceededEveryTime) {
  // The client's deadline passes before the one the server computed from
  // the rounded-up grpc-timeout, so its cancel arrives first; it must still
  // count as the deadline, for every call.
  constexpr int kCalls = 20;
  std::vector<grpc::StatusCode> seen(kCalls);
  std::vector<std::thread> clients;
  for (int i = 0; i < kCalls; ++i) {
    clients.emplace_back(
        [&, i] { seen[i] = CheckWithin(absl::Milliseconds(500)); });
  }
  for (std::thread& client : clients) client.join();
  std::vector<Outcome> outcomes = service_.WaitForOutcomes(kCalls);
  ASSERT_EQ(outcomes.size(), static_cast<size_t>(kCalls));
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(seen[i], grpc::StatusCode::DEADLINE_EXCEEDED) << i;
    EXPECT_TRUE(outcomes[i].deadline_exceeded) << i;
  }
}

TEST_F(ServerCallContextTest, ClientCancelIsNoticedAndIsNotADeadline) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  HealthCheckResponse response;
  grpc::Status status;
  std::thread client([&] {
    status = stub_->Check(&context, HealthCheckRequest(), &response);
  });
  ASSERT_TRUE(service_.WaitForWaiting(1));
  context.TryCancel();
  client.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  std::vector<Outcome> outcomes = service_.WaitForOutcomes(1);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].deadline_exceeded);
  EXPECT_LE(outcomes[0].wakeups, MaxWakeups(outcomes[0].waited))
      << "waited " << outcomes[0].waited;
}

TEST_F(ServerCallContextTest, ShutdownWakesAWaitingCall) {
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::thread client([&] {
    grpc::ClientContext context;  // No deadline: only shutdown ends it.
    HealthCheckResponse response;
    code = stub_->Check(&context, HealthCheckRequest(), &response).error_code();
  });
  ASSERT_TRUE(service_.WaitForWaiting(1));
  shutdown_.Trigger();
  std::vector<Outcome> outcomes = service_.WaitForOutcomes(1);
  client.join();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_FALSE(outcomes[0].deadline_exceeded);
  EXPECT_EQ(code, grpc::StatusCode::CANCELLED);
  EXPECT_LE(outcomes[0].wakeups, MaxWakeups(outcomes[0].waited));
}

TEST(ServerCallContextToleranceTest, IsTheFixedPartPlusOnePercent) {
  EXPECT_EQ(ServerCallContext::DeadlineTolerance(absl::ZeroDuration()),
            ServerCallContext::kDeadlineTolerance);
  EXPECT_EQ(ServerCallContext::DeadlineTolerance(absl::Seconds(5)),
            ServerCallContext::kDeadlineTolerance + absl::Milliseconds(50));
  // A call already past its deadline gets no negative allowance.
  EXPECT_EQ(ServerCallContext::DeadlineTolerance(-absl::Seconds(1)),
            ServerCallContext::kDeadlineTolerance);
}

TEST(ShutdownSignalTest, WaitUntilReturnsAtTheDeadlineOrOnTrigger) {
  ShutdownSignal signal;
  EXPECT_FALSE(signal.WaitUntil(absl::Now() + absl::Milliseconds(1)));
  std::thread trigger([&] { signal.Trigger(); });
  EXPECT_TRUE(signal.WaitUntil(absl::InfiniteFuture()));
  trigger.join();
  EXPECT_TRUE(signal.WaitFor(absl::ZeroDuration()));
}

}  // namespace
}  // namespace fake
}  // namespace workflows
