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

TEST_F(ClientMockTest, EachRetryableCodeIsRetriedFiveTimes) {
  for (grpc::StatusCode code :
       {grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::INTERNAL,
        grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::UNKNOWN,
        grpc::StatusCode::DEADLINE_EXCEEDED}) {
    SCOPED_TRACE(code);
    const size_t sleeps_before = clock_->sleeps().size();
    EXPECT_CALL(*job_, GetJob(_, _, _))
        .Times(6)
        .WillRepeatedly(Return(Error(code, "flaky")));
    CallResult<wf::Job> result = client().GetJob(wf::GetJobRequest());
    EXPECT_EQ(static_cast<int>(result.status().code()), code);
    EXPECT_TRUE(IsRetryExhausted(result.status()));
    EXPECT_THAT(RetryAttempts(result.status()), SizeIs(6));
    EXPECT_EQ(clock_->sleeps().size() - sleeps_before, 5u);
    ::testing::Mock::VerifyAndClearExpectations(job_.get());
  }
  EXPECT_EQ(stub_factory_calls_, 1);
}

TEST_F(ClientMockTest, NonRetryableCodesAreNotRetried) {
  // PERMISSION_DENIED is retried only with a retry-after trailer, which a
  // mock cannot send.
  for (grpc::StatusCode code :
       {grpc::StatusCode::NOT_FOUND, grpc::StatusCode::INVALID_ARGUMENT,
        grpc::StatusCode::PERMISSION_DENIED, grpc::StatusCode::UNAUTHENTICATED,
        grpc::StatusCode::FAILED_PRECONDITION, grpc::StatusCode::CANCELLED}) {
    SCOPED_TRACE(code);
    EXPECT_CALL(*job_, GetJob(_, _, _)).WillOnce(Return(Error(code, "no")));
    CallResult<wf::Job> result = client().GetJob(wf::GetJobRequest());
    EXPECT_EQ(static_cast<int>(result.status().code()), code);
    EXPECT_EQ(result.status().message(), "no");
    EXPECT_FALSE(IsRetryExhausted(result.status()));
    ::testing::Mock::VerifyAndClearExpectations(job_.get());
  }
  EXPECT_THAT(clock_->sleeps(), IsEmpty());
}

TEST_F(ClientMockTest, CreateJob429IsNotRetriedByDefault) {
  EXPECT_CALL(*job_, CreateJob(_, _, _))
      .WillOnce(Return(Error(grpc::StatusCode::RESOURCE_EXHAUSTED, "429")));
  CallResult<wf::Job> result = client().CreateJob(wf::CreateJobRequest());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(IsRetryExhausted(result.status()));
  EXPECT_THAT(clock_->sleeps(), IsEmpty());
}

TEST_F(ClientMockTest, CreateJobRetriesOtherCodesThreeTimesByDefault) {
  EXPECT_CALL(*job_, CreateJob(_, _, _))
      .Times(4)
      .WillRepeatedly(Return(Error(grpc::StatusCode::UNAVAILABLE)));
  EXPECT_TRUE(
      IsRetryExhausted(client().CreateJob(wf::CreateJobRequest()).status()));
  EXPECT_THAT(clock_->sleeps(), SizeIs(3));
}

TEST_F(ClientMockTest, CreateJob429IsRetriedWithNumRetries) {
  EXPECT_CALL(*job_, CreateJob(_, _, _))
      .Times(3)
      .WillRepeatedly(Return(Error(grpc::StatusCode::RESOURCE_EXHAUSTED)));
  CallOptions call;
  call.num_retries = 2;
  CallResult<wf::Job> result = client().CreateJob(wf::CreateJobRequest(), call);
  EXPECT_TRUE(IsRetryExhausted(result.status()));
  EXPECT_THAT(RetryAttempts(result.status()), SizeIs(3));
  // Without a pushback trailer: plain backoff, U(0, 1) s of jitter included.
  ASSERT_THAT(clock_->sleeps(), SizeIs(2));
  EXPECT_LT(clock_->sleeps()[0], absl::Seconds(1.1));
}

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

TEST_F(ClientMockTest, MetadataMergesClientThenApiThenCallLaterKeysWin) {
  options_.default_metadata = {{"a", "client"},
                               {"b", "client"},
                               {"c", "client"},
                               {"x-wf-channel", "v0-20"}};
  options_.api_metadata["GetJob"] = {{"b", "api"}, {"c", "api"}};
  std::multimap<std::string, std::string> sent;
  EXPECT_CALL(*job_, GetJob(_, _, _))
      .WillOnce(Invoke([&](grpc::ClientContext* context,
                           const wf::GetJobRequest&, wf::Job*) {
        sent = ClientContextTestPeer(context).GetSendInitialMetadata();
        return grpc::Status::OK;
      }));
  CallOptions call;
  call.metadata = {{"C", "call"}};  // Keys are case-insensitive.
  ASSERT_TRUE(client().GetJob(wf::GetJobRequest(), call).ok());
  auto only = [&](const std::string& key) {
    std::vector<std::string> values;
    auto [begin, end] = sent.equal_range(key);
    for (auto it = begin; it != end; ++it) values.push_back(it->second);
    return values;
  };
  EXPECT_THAT(only("a"), ElementsAre("client"));
  EXPECT_THAT(only("b"), ElementsAre("api"));
  EXPECT_THAT(only("c"), ElementsAre("call"));
  EXPECT_THAT(only("x-wf-channel"), ElementsAre("v0-20"));
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

TEST_F(ClientMockTest, HealthReturnsEachServingStatus) {
  for (health::HealthCheckResponse::ServingStatus status :
       {health::HealthCheckResponse::SERVING,
        health::HealthCheckResponse::NOT_SERVING,
        health::HealthCheckResponse::UNKNOWN}) {
    SCOPED_TRACE(status);
    health::HealthCheckResponse response;
    response.set_status(status);
    EXPECT_CALL(*health_, Check(_, _, _))
        .WillOnce(Invoke([&](grpc::ClientContext*,
                             const health::HealthCheckRequest& request,
                             health::HealthCheckResponse* out) {
          EXPECT_EQ(request.service(), "");
          *out = response;
          return grpc::Status::OK;
        }));
    absl::StatusOr<health::HealthCheckResponse::ServingStatus> got =
        client().Health();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, status);
    ::testing::Mock::VerifyAndClearExpectations(health_.get());
  }
}

TEST_F(ClientMockTest, HealthTimeoutIsOneBudgetForEveryAttempt) {
  options_.default_retry.reset();  // The real default policy.
  std::vector<absl::Duration> deadlines;
  ON_CALL(*health_, Check(_, _, _))
      .WillByDefault(Invoke([&](grpc::ClientContext* context,
                                const health::HealthCheckRequest&,
                                health::HealthCheckResponse*) {
        deadlines.push_back(absl::FromChrono(context->deadline()) -
                            absl::Now());
        return Error(grpc::StatusCode::UNAVAILABLE, "down");
      }));
  const absl::Time start = clock_->Now();
  absl::Status status = client().Health(absl::Seconds(3)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()), HasSubstr("3s budget"));
  EXPECT_LE(clock_->Now() - start, absl::Seconds(3));
  ASSERT_THAT(deadlines, ::testing::Not(IsEmpty()));
  EXPECT_LE(deadlines.size(), 6u);
  // Each attempt's deadline is at most what was left of the 3 s.
  absl::Duration slept = absl::ZeroDuration();
  for (size_t i = 0; i < deadlines.size(); ++i) {
    EXPECT_LE(deadlines[i], absl::Seconds(3) - slept) << i;
    if (i < clock_->sleeps().size()) slept += clock_->sleeps()[i];
  }
  EXPECT_THAT(clock_->sleeps(), SizeIs(deadlines.size() - 1));
}

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

TEST_F(ClientMockTest, WaitForJobFailedIsTheMappedJobError) {
  wf::Job::State failed = State(wf::Job::FAILED);
  failed.mutable_error()->set_code(wf::ERROR_OOM);
  failed.mutable_error()->set_message("too big");
  EXPECT_CALL(*job_, WatchJobRaw(_, _))
      .WillOnce(Return(StatesThen({State(wf::Job::RUNNING), failed})));
  absl::Status status = client().WaitForJob("j", absl::Minutes(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(JobErrorCode(status), ::testing::Optional(wf::ERROR_OOM));
  EXPECT_THAT(std::string(status.message()), HasSubstr("too big"));
}

TEST_F(ClientMockTest, WaitForJobCancelled) {
  EXPECT_CALL(*job_, WatchJobRaw(_, _))
      .WillOnce(Return(StatesThen({State(wf::Job::CANCELLED)})));
  EXPECT_CALL(*job_, CancelJob(_, _, _)).Times(0);
  absl::Status status = client().WaitForJob("j", absl::Minutes(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"j\""));
}

TEST_F(ClientMockTest, WaitForJobReopensAStreamThatEndedEarly) {
  std::vector<std::string> watched;
  EXPECT_CALL(*job_, WatchJobRaw(_, _))
      .WillOnce(DoAll(
          Invoke([&](grpc::ClientContext*, const wf::WatchJobRequest& request) {
            watched.push_back(request.id());
          }),
          Return(StatesThen({State(wf::Job::QUEUED)}))))
      .WillOnce(DoAll(
          Invoke([&](grpc::ClientContext*, const wf::WatchJobRequest& request) {
            watched.push_back(request.id());
          }),
          Return(StatesThen({State(wf::Job::SUCCEEDED)}))));
  EXPECT_TRUE(client().WaitForJob("j", absl::Minutes(1)).ok());
  EXPECT_THAT(watched, ElementsAre("j", "j"));
  EXPECT_THAT(clock_->sleeps(), ElementsAre(absl::Seconds(0.1)));
}

TEST_F(ClientMockTest, WaitForJobReopensOnRetryableErrors) {
  EXPECT_CALL(*job_, WatchJobRaw(_, _))
      .WillOnce(Return(StatesThen({State(wf::Job::RUNNING)},
                                  Error(grpc::StatusCode::UNAVAILABLE))))
      .WillOnce(Return(StatesThen({State(wf::Job::SUCCEEDED)})));
  EXPECT_TRUE(client().WaitForJob("j", absl::Minutes(1)).ok());
}

TEST_F(ClientMockTest, WaitForJobDeadlineExceededCancelsTheJob) {
  EXPECT_CALL(*job_, WatchJobRaw(_, _))
      .WillOnce(Return(StatesThen({State(wf::Job::RUNNING)},
                                  Error(grpc::StatusCode::DEADLINE_EXCEEDED))));
  EXPECT_CALL(*job_, CancelJob(_, _, _))
      .WillOnce(
          Invoke([](grpc::ClientContext*, const wf::CancelJobRequest& request,
                    wf::CancelJobResponse*) {
            EXPECT_EQ(request.id(), "j");
            return grpc::Status::OK;
          }));
  absl::Status status = client().WaitForJob("j", absl::Minutes(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"j\""));
}

TEST_F(ClientMockTest, WaitForJobDeadlineExceededWithoutCancel) {
  EXPECT_CALL(*job_, WatchJobRaw(_, _))
      .WillOnce(
          Return(StatesThen({}, Error(grpc::StatusCode::DEADLINE_EXCEEDED))));
  EXPECT_CALL(*job_, CancelJob(_, _, _)).Times(0);
  WaitOptions wait;
  wait.cancel_on_timeout = false;
  EXPECT_EQ(client().WaitForJob("j", absl::Minutes(1), wait).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientMockTest, WaitForJobCancelFailureIsReported) {
  EXPECT_CALL(*job_, WatchJobRaw(_, _))
      .WillOnce(
          Return(StatesThen({}, Error(grpc::StatusCode::DEADLINE_EXCEEDED))));
  EXPECT_CALL(*job_, CancelJob(_, _, _))
      .WillOnce(Return(Error(grpc::StatusCode::NOT_FOUND, "no such job")));
  absl::Status status = client().WaitForJob("j", absl::Minutes(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()), HasSubstr("no such job"));
}

}  // namespace
}  // namespace workflows
