// Calls that wait on the standalone fake server until their client's
// deadline passes (`hang`, `then_hang`), over TCP as CI jobs call it: the
// journal must say DEADLINE_EXCEEDED for every one, as their clients saw.
// The server's deadline comes from the rounded-up grpc-timeout, counted from
// when it read the request, so the client's own expiry (RST_STREAM) reaches
// it first; the journal used to say CANCELLED for 2-15 calls in 20.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <memory>
#include <string>
#include <thread>  // NOLINT: concurrent clients.
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/control.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/job.grpc.pb.h"
#include "tests/scenarios/server_process.h"

namespace workflows {
namespace testing {
namespace {

namespace wf = ::descarteslabs::workflows;
using ::testing::Each;
using ::testing::SizeIs;

constexpr int kCalls = 20;
// Long enough that every call reaches the server before its deadline on a
// loaded machine under a sanitizer (else it would not be journaled at all).
constexpr absl::Duration kClientTimeout = absl::Seconds(2);
constexpr absl::Duration kControlTimeout = absl::Seconds(30);

std::chrono::system_clock::time_point In(absl::Duration duration) {
  return absl::ToChronoTime(absl::Now() + duration);
}

class WaitingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<ServerProcess>> started =
        ServerProcess::Start({});
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    // Connected before the timed calls start, so that none spends its
    // deadline connecting.
    ASSERT_TRUE(channel_->WaitForConnected(In(kControlTimeout)));
    control_ = fake::FakeControl::NewStub(channel_);
    jobs_ = wf::JobAPI::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ == nullptr) return;
    absl::StatusOr<ProcessResult> stopped = server_->Stop(SIGTERM);
    ASSERT_TRUE(stopped.ok()) << stopped.status();
    EXPECT_EQ(stopped->exit_code, 0) << stopped->stderr_text;
  }

  grpc::Status Load(const std::string& text) {
    grpc::ClientContext context;
    context.set_deadline(In(kControlTimeout));
    fake::LoadScenarioRequest request;
    request.set_scenario_text(text);
    fake::LoadScenarioResponse response;
    return control_->LoadScenario(&context, request, &response);
  }

  // The journal's status codes of `method`, once `count` calls have ended.
  std::vector<std::string> JournaledCodes(const std::string& method,
                                          int count) {
    {
      grpc::ClientContext context;
      context.set_deadline(In(kControlTimeout));
      fake::WaitForCallsRequest request;
      request.set_method(method);
      request.set_count(count);
      request.mutable_timeout()->set_seconds(25);
      fake::WaitForCallsResponse response;
      grpc::Status ended = control_->WaitForCalls(&context, request, &response);
      EXPECT_TRUE(ended.ok()) << ended.error_message();
    }
    grpc::ClientContext context;
    context.set_deadline(In(kControlTimeout));
    fake::GetJournalRequest request;
    request.set_method(method);
    fake::GetJournalResponse response;
    grpc::Status read = control_->GetJournal(&context, request, &response);
    EXPECT_TRUE(read.ok()) << read.error_message();
    std::vector<std::string> codes;
    for (const fake::RecordedCall& call : response.journal().calls()) {
      codes.push_back(call.status_code());
    }
    return codes;
  }

  grpc::StatusCode GetJob() {
    grpc::ClientContext context;
    context.set_deadline(In(kClientTimeout));
    wf::GetJobRequest request;
    request.set_id("job-1");
    wf::Job job;
    return jobs_->GetJob(&context, request, &job).error_code();
  }

  grpc::StatusCode WatchJob() {
    grpc::ClientContext context;
    context.set_deadline(In(kClientTimeout));
    wf::WatchJobRequest request;
    request.set_id("job-1");
    std::unique_ptr<grpc::ClientReader<wf::Job::State>> reader =
        jobs_->WatchJob(&context, request);
    wf::Job::State state;
    while (reader->Read(&state)) {
    }
    return reader->Finish().error_code();
  }

  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<fake::FakeControl::Stub> control_;
  std::unique_ptr<wf::JobAPI::Stub> jobs_;
};

TEST_F(WaitingTest, HangAndThenHangPastTheDeadlineAreJournaledAsTheClientSaw) {
  grpc::Status loaded = Load(R"pb(
    rules {
      method: "GetJob"
      behavior { hang: true }
    }
    rules {
      method: "WatchJob"
      behavior {
        stream {
          messages {
            [type.googleapis.com/descarteslabs.workflows.Job.State] {
              stage: RUNNING
            }
          }
          then_hang: true
        }
      }
    }
  )pb");
  ASSERT_TRUE(loaded.ok()) << loaded.error_message();

  std::vector<grpc::StatusCode> unary(kCalls);
  std::vector<grpc::StatusCode> streams(kCalls);
  std::vector<std::thread> clients;
  for (int i = 0; i < kCalls; ++i) {
    clients.emplace_back([&, i] { unary[i] = GetJob(); });
    clients.emplace_back([&, i] { streams[i] = WatchJob(); });
  }
  for (std::thread& client : clients) client.join();

  EXPECT_THAT(unary, Each(grpc::StatusCode::DEADLINE_EXCEEDED));
  EXPECT_THAT(streams, Each(grpc::StatusCode::DEADLINE_EXCEEDED));
  std::vector<std::string> hung = JournaledCodes("GetJob", kCalls);
  EXPECT_THAT(hung, SizeIs(kCalls));
  EXPECT_THAT(hung, Each("DEADLINE_EXCEEDED"));
  std::vector<std::string> then_hung = JournaledCodes("WatchJob", kCalls);
  EXPECT_THAT(then_hung, SizeIs(kCalls));
  EXPECT_THAT(then_hung, Each("DEADLINE_EXCEEDED"));
}

}  // namespace
}  // namespace testing
}  // namespace workflows
