// The client over the generated gMock stubs: no server at all. What the
// client sends is read back with grpc::testing::ClientContextTestPeer.
#include <grpcpp/test/client_context_test_peer.h>
#include <grpcpp/test/mock_stream.h>

#include "client/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/job_mock.grpc.pb.h"

namespace workflows {
namespace {

using ::grpc::testing::ClientContextTestPeer;
using ::testing::_;
using ::testing::DoAll;
using ::testing::ElementsAre;
using ::testing::Invoke;
using ::testing::Return;
using ::testing::SetArgPointee;
using ::testing::SizeIs;

class ClientMockTest : public ::testing::Test {
 protected:
  ClientMockTest() : clock_(std::make_shared<SimulatedClock>()) {
    ClientOptions options;
    // Never connected: the stubs below replace the generated ones.
    options.channel =
        grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
    options.clock = clock_;
    RetryPolicy retry = RetryPolicy::Default();
    retry.jitter = [](double, double) { return 0.0; };
    options.default_retry = retry;
    client_ = std::make_unique<Client>(options);
    auto job = std::make_unique<wf::MockJobAPIStub>();
    job_ = job.get();
    client_->set_stub_factory(
        [this, job = std::shared_ptr<wf::MockJobAPIStub>(std::move(job))](
            const std::shared_ptr<grpc::Channel>&) mutable {
          ++stub_factory_calls_;
          auto stubs = std::make_shared<Client::Stubs>();
          // Handed over once: the stubs are built on the first call.
          stubs->job.reset(new ::testing::NiceMock<ForwardingJobStub>(job));
          stubs->server_metadata = server_metadata_;
          return stubs;
        });
  }

  // Keeps the mock alive across stub rebuilds (Close()).
  class ForwardingJobStub : public wf::MockJobAPIStub {
   public:
    explicit ForwardingJobStub(std::shared_ptr<wf::MockJobAPIStub> mock)
        : mock_(std::move(mock)) {
      ON_CALL(*this, GetJob)
          .WillByDefault(Invoke(mock_.get(), &wf::MockJobAPIStub::GetJob));
      ON_CALL(*this, WatchJobRaw)
          .WillByDefault(Invoke(mock_.get(), &wf::MockJobAPIStub::WatchJobRaw));
    }

   private:
    std::shared_ptr<wf::MockJobAPIStub> mock_;
  };

  std::shared_ptr<SimulatedClock> clock_;
  std::unique_ptr<Client> client_;
  wf::MockJobAPIStub* job_ = nullptr;  // Owned by the client's stubs.
  bool server_metadata_ = false;
  int stub_factory_calls_ = 0;
};

TEST_F(ClientMockTest, RetriesUnavailableSixTimesInAll) {
  EXPECT_CALL(*job_, GetJob(_, _, _))
      .Times(6)
      .WillRepeatedly(
          Return(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")));
  CallResult<wf::Job> result = client_->GetJob(wf::GetJobRequest());
  EXPECT_TRUE(IsRetryExhausted(result.status()));
  EXPECT_THAT(clock_->sleeps(), SizeIs(5));
  EXPECT_EQ(stub_factory_calls_, 1);
}

TEST_F(ClientMockTest, SendsHeadersAndDeadline) {
  EXPECT_CALL(*job_, GetJob(_, _, _))
      .WillOnce(Invoke([](grpc::ClientContext* context,
                          const wf::GetJobRequest& request, wf::Job* job) {
        std::multimap<std::string, std::string> sent =
            ClientContextTestPeer(context).GetSendInitialMetadata();
        EXPECT_EQ(sent.count("x-wf-channel"), 1);
        EXPECT_EQ(sent.find("x-wf-channel")->second, "v0-19");
        EXPECT_EQ(sent.find("x-on-behalf-of-user")->second, "bob");
        absl::Duration left =
            absl::FromChrono(context->deadline()) - absl::Now();
        EXPECT_GT(left, absl::Seconds(9));
        EXPECT_LE(left, absl::Seconds(10));
        job->set_id(request.id());
        return grpc::Status::OK;
      }));
  wf::GetJobRequest request;
  request.set_id("j");
  CallOptions call;
  call.on_behalf_of = "bob";
  call.timeout = absl::Seconds(10);
  CallResult<wf::Job> result = client_->GetJob(request, call);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->id(), "j");
}

TEST_F(ClientMockTest, WarningsInjectedIntoTheContext) {
  server_metadata_ = true;
  std::vector<std::unique_ptr<ClientContextTestPeer>> peers;
  EXPECT_CALL(*job_, GetJob(_, _, _))
      .WillOnce(Invoke([&](grpc::ClientContext* context,
                           const wf::GetJobRequest&, wf::Job*) {
        // The peer must outlive the context's metadata reads.
        peers.push_back(std::make_unique<ClientContextTestPeer>(context));
        peers.back()->AddServerInitialMetadata("x-wf-warnings", "careful");
        return grpc::Status::OK;
      }));
  EXPECT_THAT(client_->GetJob(wf::GetJobRequest()).warnings(),
              ElementsAre("careful"));
}

TEST_F(ClientMockTest, WaitForJobOverAMockStream) {
  auto* reader = new grpc::testing::MockClientReader<wf::Job::State>();
  wf::Job::State running, done;
  running.set_stage(wf::Job::RUNNING);
  done.set_stage(wf::Job::SUCCEEDED);
  EXPECT_CALL(*reader, Read(_))
      .WillOnce(DoAll(SetArgPointee<0>(running), Return(true)))
      .WillOnce(DoAll(SetArgPointee<0>(done), Return(true)))
      .WillOnce(Return(false));  // Drained after WaitForJob cancels it.
  EXPECT_CALL(*reader, Finish()).WillOnce(Return(grpc::Status::OK));
  EXPECT_CALL(*job_, WatchJobRaw(_, _)).WillOnce(Return(reader));
  absl::StatusOr<wf::Job::State> state =
      client_->WaitForJob("j", absl::Minutes(1));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->stage(), wf::Job::SUCCEEDED);
}

TEST_F(ClientMockTest, MissingStubIsUnimplemented) {
  EXPECT_EQ(client_->GetWorkflow(wf::GetWorkflowRequest()).status().code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace workflows
