// The client over the generated gMock stubs: no server at all. What the
// client sends is read back with grpc::testing::ClientContextTestPeer.
//
// Trailers cannot be injected this way (ClientContextTestPeer only fills
// initial metadata), so the trailer-driven retries (retry-after on
// PERMISSION_DENIED, grpc-retry-pushback-ms on CreateJob's 429) are tested
// against the ScriptedServer in client_test.cc instead.
#include <grpcpp/test/client_context_test_peer.h>
#include <grpcpp/test/mock_stream.h>

#include "client/client.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health_mock.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/job_mock.grpc.pb.h"

namespace workflows {
namespace {

using ::grpc::testing::ClientContextTestPeer;
using ::grpc::testing::MockClientReader;
using ::testing::_;
using ::testing::DoAll;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Invoke;
using ::testing::IsEmpty;
using ::testing::NiceMock;
using ::testing::Return;
using ::testing::SetArgPointee;
using ::testing::SizeIs;

grpc::Status Error(grpc::StatusCode code, const std::string& message = "x") {
  return grpc::Status(code, message);
}

wf::Job::State State(wf::Job::Stage stage) {
  wf::Job::State state;
  state.set_stage(stage);
  return state;
}

// A mock stream yielding `states`, then ending with `end`. Owned by the
// client once a WatchJobRaw expectation returns it.
MockClientReader<wf::Job::State>* StatesThen(
    const std::vector<wf::Job::State>& states,
    grpc::Status end = grpc::Status::OK) {
  auto* reader = new NiceMock<MockClientReader<wf::Job::State>>();
  ::testing::Sequence sequence;
  for (const wf::Job::State& state : states) {
    EXPECT_CALL(*reader, Read(_))
        .InSequence(sequence)
        .WillOnce(DoAll(SetArgPointee<0>(state), Return(true)));
  }
  // Also what the drain after a cancel reads.
  EXPECT_CALL(*reader, Read(_))
      .InSequence(sequence)
      .WillRepeatedly(Return(false));
  EXPECT_CALL(*reader, Finish()).WillOnce(Return(end));
  return reader;
}

class ClientMockTest : public ::testing::Test {
 protected:
  ClientMockTest()
      : clock_(std::make_shared<SimulatedClock>()),
        job_(std::make_shared<NiceMock<wf::MockJobAPIStub>>()),
        health_(std::make_shared<NiceMock<health::MockHealthStub>>()) {
    // Never connected: the stubs below replace the generated ones.
    options_.channel =
        grpc::CreateChannel("127.0.0.1:1", grpc::InsecureChannelCredentials());
    options_.clock = clock_;
    RetryPolicy retry = RetryPolicy::Default();
    retry.jitter = [](double, double) { return 0.0; };
    options_.default_retry = retry;
  }

  // Keeps the mocks alive across stub rebuilds (Close()).
  class ForwardingJobStub : public wf::MockJobAPIStub {
   public:
    explicit ForwardingJobStub(std::shared_ptr<wf::MockJobAPIStub> mock)
        : mock_(std::move(mock)) {
      ON_CALL(*this, CreateJob)
          .WillByDefault(Invoke(mock_.get(), &wf::MockJobAPIStub::CreateJob));
      ON_CALL(*this, GetJob)
          .WillByDefault(Invoke(mock_.get(), &wf::MockJobAPIStub::GetJob));
      ON_CALL(*this, CancelJob)
          .WillByDefault(Invoke(mock_.get(), &wf::MockJobAPIStub::CancelJob));
      ON_CALL(*this, WatchJobRaw)
          .WillByDefault(Invoke(mock_.get(), &wf::MockJobAPIStub::WatchJobRaw));
    }

   private:
    std::shared_ptr<wf::MockJobAPIStub> mock_;
  };
  class ForwardingHealthStub : public health::MockHealthStub {
   public:
    explicit ForwardingHealthStub(std::shared_ptr<health::MockHealthStub> mock)
        : mock_(std::move(mock)) {
      ON_CALL(*this, Check)
          .WillByDefault(Invoke(mock_.get(), &health::MockHealthStub::Check));
    }

   private:
    std::shared_ptr<health::MockHealthStub> mock_;
  };

  // The client under test, built from options_ on first use.
  Client& client() {
    if (client_ == nullptr) {
      client_ = std::make_unique<Client>(options_);
      client_->set_stub_factory([this](const std::shared_ptr<grpc::Channel>&) {
        ++stub_factory_calls_;
        auto stubs = std::make_shared<Client::Stubs>();
        stubs->job.reset(new NiceMock<ForwardingJobStub>(job_));
        stubs->health.reset(new NiceMock<ForwardingHealthStub>(health_));
        stubs->injected_server_metadata = injected_server_metadata_;
        return stubs;
      });
    }
    return *client_;
  }

  // Drops the client (and its stubs) so that options_ can change.
  void Rebuild() { client_.reset(); }

  ClientOptions options_;
  std::shared_ptr<SimulatedClock> clock_;
  std::shared_ptr<wf::MockJobAPIStub> job_;
  std::shared_ptr<health::MockHealthStub> health_;
  std::unique_ptr<Client> client_;
  bool injected_server_metadata_ = false;
  int stub_factory_calls_ = 0;
};

// ---- Retries ----

TEST_F(ClientMockTest, RetriesUnavailableSixTimesInAllAcrossClose) {
  EXPECT_CALL(*job_, GetJob(_, _, _))
      .Times(6)
      .WillRepeatedly(Return(Error(grpc::StatusCode::UNAVAILABLE, "down")));
  CallResult<wf::Job> result = client().GetJob(wf::GetJobRequest());
  EXPECT_TRUE(IsRetryExhausted(result.status()));
  EXPECT_THAT(clock_->sleeps(), SizeIs(5));
  EXPECT_EQ(stub_factory_calls_, 1);
  client().Close();
  EXPECT_CALL(*job_, GetJob(_, _, _)).WillOnce(Return(grpc::Status::OK));
  EXPECT_TRUE(client().GetJob(wf::GetJobRequest()).ok());
  EXPECT_EQ(stub_factory_calls_, 2);
}

// ---- Metadata ----

TEST_F(ClientMockTest, SendsHeadersAndDeadline) {
  EXPECT_CALL(*job_, GetJob(_, _, _))
      .WillOnce(Invoke([](grpc::ClientContext* context,
                          const wf::GetJobRequest& request, wf::Job* job) {
        std::multimap<std::string, std::string> sent =
            ClientContextTestPeer(context).GetSendInitialMetadata();
        EXPECT_EQ(sent.count("x-wf-channel"), 1);
        EXPECT_EQ(sent.find("x-wf-channel")->second, "v0-19");
        EXPECT_EQ(sent.find("x-on-behalf-of-user")->second, "bob");
        EXPECT_EQ(sent.count("user-agent"), 1);
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
  CallResult<wf::Job> result = client().GetJob(request, call);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->id(), "j");
}

TEST_F(ClientMockTest, WarningsInjectedIntoTheContext) {
  injected_server_metadata_ = true;
  std::vector<std::unique_ptr<ClientContextTestPeer>> peers;
  EXPECT_CALL(*job_, GetJob(_, _, _))
      .WillOnce(Invoke([&](grpc::ClientContext* context,
                           const wf::GetJobRequest&, wf::Job*) {
        // The peer must outlive the context's metadata reads.
        peers.push_back(std::make_unique<ClientContextTestPeer>(context));
        peers.back()->AddServerInitialMetadata("x-wf-warnings", "careful");
        return grpc::Status::OK;
      }));
  EXPECT_THAT(client().GetJob(wf::GetJobRequest()).warnings(),
              ElementsAre("careful"));
}

// ---- No RPC issued: the server's metadata must not be read ----
// gRPC aborts the whole test binary if it is, so each of these fails by
// crashing rather than by an assertion.

TEST_F(ClientMockTest, StubReturningAStatusWithoutACallDoesNotAbort) {
  EXPECT_CALL(*job_, GetJob(_, _, _))
      .WillOnce(Return(Error(grpc::StatusCode::NOT_FOUND, "no job")));
  CallResult<wf::Job> result = client().GetJob(wf::GetJobRequest());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(result.warnings(), IsEmpty());
  EXPECT_CALL(*job_, GetJob(_, _, _)).WillOnce(Return(grpc::Status::OK));
  EXPECT_TRUE(client().GetJob(wf::GetJobRequest()).ok());
}

TEST_F(ClientMockTest, MissingStubIsUnimplementedWithoutAborting) {
  // The factory fills no workflow, xyz or access-grant stub.
  EXPECT_EQ(client().GetWorkflow(wf::GetWorkflowRequest()).status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(client().ListXYZ(wf::ListXYZRequest())->Finish().code(),
            absl::StatusCode::kInternal);  // "ListXYZ did not start"
}

TEST_F(ClientMockTest, MockStreamWithoutACallDoesNotAbort) {
  EXPECT_CALL(*job_, WatchJobRaw(_, _))
      .WillOnce(Return(StatesThen({State(wf::Job::RUNNING)},
                                  Error(grpc::StatusCode::NOT_FOUND, "gone"))));
  std::unique_ptr<StreamReader<wf::Job::State>> states =
      client().WatchJob(wf::WatchJobRequest());
  wf::Job::State state;
  ASSERT_TRUE(states->Next(&state));
  EXPECT_FALSE(states->Next(&state));
  EXPECT_EQ(states->Finish().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(states->warnings(), IsEmpty());
}

// ---- Health ----

// ---- WaitForJob ----

TEST_F(ClientMockTest, WaitForJobSucceeds) {
  EXPECT_CALL(*job_, WatchJobRaw(_, _))
      .WillOnce(Return(
          StatesThen({State(wf::Job::RUNNING), State(wf::Job::SUCCEEDED)})));
  absl::StatusOr<wf::Job::State> state =
      client().WaitForJob("j", absl::Minutes(1));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->stage(), wf::Job::SUCCEEDED);
}

}  // namespace
}  // namespace workflows
