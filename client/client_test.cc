#include "client/client.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <atomic>
#include <cstdlib>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "client/test_server.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace workflows {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;
using ::workflows::testing::Msg;
using ::workflows::testing::RecordedCall;
using ::workflows::testing::Reply;
using ::workflows::testing::ScriptedServer;

grpc::Status Error(grpc::StatusCode code, const std::string& message = "x") {
  return grpc::Status(code, message);
}

// Every value of `key` in `metadata`.
std::vector<std::string> Values(const Metadata& metadata,
                                const std::string& key) {
  std::vector<std::string> out;
  for (const auto& [k, v] : metadata) {
    if (k == key) out.push_back(v);
  }
  return out;
}

RetryPolicy::JitterSource Fixed(double value) {
  return [value](double, double) { return value; };
}

class ClientTest : public ::testing::Test {
 protected:
  ClientTest() : clock_(std::make_shared<SimulatedClock>()) {
    port_ = server_.Start("127.0.0.1:0");
    options_.channel = server_.InProcessChannel();
    options_.clock = clock_;
    options_.auth = std::make_shared<StaticTokenAuth>("secret-token");
    RetryPolicy retry = RetryPolicy::Default();
    retry.jitter = Fixed(0.0);
    options_.default_retry = retry;
  }

  wf::GetJobRequest JobRequest(const std::string& id = "job-1") {
    wf::GetJobRequest request;
    request.set_id(id);
    return request;
  }

  wf::Job::State State(wf::Job::Stage stage) {
    wf::Job::State state;
    state.set_stage(stage);
    return state;
  }

  // In-process channels do not enforce deadlines; tests of hangs use TCP.
  std::shared_ptr<grpc::Channel> TcpChannel() {
    return grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                               grpc::InsecureChannelCredentials());
  }

  ScriptedServer server_;
  int port_ = 0;
  std::shared_ptr<SimulatedClock> clock_;
  ClientOptions options_;
};

// ---- Metadata ----

TEST_F(ClientTest, AlwaysSendsChannelAndUserAgent) {
  Client client(options_);
  ASSERT_TRUE(client.GetJob(JobRequest()).ok());
  std::vector<RecordedCall> calls = server_.calls("GetJob");
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_THAT(Values(calls[0].metadata, "x-wf-channel"), ElementsAre("v0-19"));
  std::vector<std::string> agents = Values(calls[0].metadata, "user-agent");
  ASSERT_THAT(agents, SizeIs(1));
  EXPECT_TRUE(absl::StartsWith(agents[0], "workflows-cpp/0.1.0")) << agents[0];
  // Call credentials never cross an insecure (here in-process) channel.
  EXPECT_THAT(Values(calls[0].metadata, "authorization"), IsEmpty());
}

TEST_F(ClientTest, MergesClientApiOnBehalfOfAndCallMetadataLaterWins) {
  options_.default_metadata = {
      {"baz", "client"}, {"garply", "client"}, {"x-wf-channel", "v0-20"}};
  options_.api_metadata["GetJob"] = {
      {"baz", "api"}, {"garply", "api"}, {"waldo", "api"}};
  Client client(options_);
  CallOptions call;
  call.metadata = {{"garply", "call"}, {"Fred", "call"}};
  call.on_behalf_of = "someone@example.com";
  ASSERT_TRUE(client.GetJob(JobRequest(), call).ok());
  const Metadata seen = server_.calls("GetJob")[0].metadata;
  EXPECT_THAT(Values(seen, "baz"), ElementsAre("api"));
  EXPECT_THAT(Values(seen, "garply"), ElementsAre("call"));
  EXPECT_THAT(Values(seen, "waldo"), ElementsAre("api"));
  EXPECT_THAT(Values(seen, "fred"), ElementsAre("call"));  // lower-cased
  EXPECT_THAT(Values(seen, "x-wf-channel"), ElementsAre("v0-20"));
  EXPECT_THAT(Values(seen, "x-on-behalf-of-user"),
              ElementsAre("someone@example.com"));

  // Per-API metadata applies to its API only.
  ASSERT_TRUE(client.CancelJob(wf::CancelJobRequest()).ok());
  const Metadata cancel = server_.calls("CancelJob")[0].metadata;
  EXPECT_THAT(Values(cancel, "baz"), ElementsAre("client"));
  EXPECT_THAT(Values(cancel, "waldo"), IsEmpty());
}

TEST_F(ClientTest, WorkflowsChannelOption) {
  options_.workflows_channel = "v0-18";
  Client client(options_);
  ASSERT_TRUE(client.GetJob(JobRequest()).ok());
  EXPECT_THAT(Values(server_.calls("GetJob")[0].metadata, "x-wf-channel"),
              ElementsAre("v0-18"));
}

TEST_F(ClientTest, InvalidMetadataIsRejectedBeforeTheCall) {
  Client client(options_);
  CallOptions call;
  call.metadata = {{"bad key", "v"}};
  CallResult<wf::Job> result = client.GetJob(JobRequest(), call);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("bad key"));
  call.metadata = {{"ok", "line\nbreak"}};
  EXPECT_EQ(client.GetJob(JobRequest(), call).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.count("GetJob"), 0);
}

TEST_F(ClientTest, TokenAsPlainMetadataWhenAskedOnInsecureChannels) {
  options_.send_token_on_insecure_channel = true;
  Client client(options_);
  ASSERT_TRUE(client.GetJob(JobRequest()).ok());
  EXPECT_THAT(Values(server_.calls("GetJob")[0].metadata, "authorization"),
              ElementsAre("Bearer secret-token"));
}

TEST_F(ClientTest, MissingTokenFailsAtCallTimeWithoutCallingOrRetrying) {
  constexpr char kVar[] = "WORKFLOWS_CLIENT_TEST_MISSING_TOKEN";
  unsetenv(kVar);
  options_.auth = std::make_shared<EnvironmentAuth>(kVar);
  options_.send_token_on_insecure_channel = true;
  Client client(options_);  // Constructing is fine.
  CallResult<wf::Job> result = client.GetJob(JobRequest());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr(kVar));
  EXPECT_EQ(server_.count("GetJob"), 0);
  EXPECT_THAT(clock_->sleeps(), IsEmpty());
}

// ---- Warnings ----

TEST_F(ClientTest, WarningsFromInitialMetadataInOrder) {
  Reply reply;
  reply.initial_metadata = {{"x-wf-warnings", "first"},
                            {"x-wf-warnings", "second"}};
  server_.Enqueue("GetJob", reply);
  Client client(options_);
  CallResult<wf::Job> result = client.GetJob(JobRequest());
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result.warnings(), ElementsAre("first", "second"));
  EXPECT_THAT(client.GetJob(JobRequest()).warnings(), IsEmpty());
}

TEST_F(ClientTest, WarningsOfFailedAttemptsAreKept) {
  Reply failed;
  failed.status = Error(grpc::StatusCode::UNAVAILABLE);
  failed.initial_metadata = {{"x-wf-warnings", "degraded"}};
  server_.Enqueue("GetJob", failed);
  Client client(options_);
  CallResult<wf::Job> result = client.GetJob(JobRequest());
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result.warnings(), ElementsAre("degraded"));
}

// ---- Results ----

TEST_F(ClientTest, ReturnsTheResponse) {
  wf::Job job;
  job.set_id("job-1");
  job.set_user("me");
  Reply reply;
  reply.messages = {Msg(job)};
  server_.Enqueue("GetJob", reply);
  Client client(options_);
  CallResult<wf::Job> result = client.GetJob(JobRequest());
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->user(), "me");
  absl::StatusOr<wf::Job> as_status_or = std::move(result);
  EXPECT_EQ(as_status_or->id(), "job-1");
  wf::GetJobRequest sent;
  ASSERT_TRUE(sent.ParseFromString(server_.calls("GetJob")[0].request));
  EXPECT_EQ(sent.id(), "job-1");
}

// ---- Retries ----

TEST_F(ClientTest, RetriesRetryableCodesFiveTimesWithGrowingBackoff) {
  for (grpc::StatusCode code :
       {grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::INTERNAL,
        grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::UNKNOWN,
        grpc::StatusCode::DEADLINE_EXCEEDED}) {
    ScriptedServer server;
    auto clock = std::make_shared<SimulatedClock>();
    options_.channel = server.InProcessChannel();
    options_.clock = clock;
    for (int i = 0; i < 6; ++i) server.Enqueue("GetJob", {Error(code)});
    Client client(options_);
    CallResult<wf::Job> result = client.GetJob(JobRequest());
    EXPECT_EQ(static_cast<int>(result.status().code()), code);
    EXPECT_TRUE(IsRetryExhausted(result.status()));
    EXPECT_THAT(RetryAttempts(result.status()), SizeIs(6));
    EXPECT_EQ(server.count("GetJob"), 6) << code;
    EXPECT_THAT(
        clock->sleeps(),
        ElementsAre(absl::Seconds(0.1), absl::Seconds(0.2), absl::Seconds(0.4),
                    absl::Seconds(0.8), absl::Seconds(1.6)));
  }
}

TEST_F(ClientTest, NonRetryableCodesAreReturnedAtOnce) {
  for (grpc::StatusCode code :
       {grpc::StatusCode::NOT_FOUND, grpc::StatusCode::INVALID_ARGUMENT,
        grpc::StatusCode::PERMISSION_DENIED, grpc::StatusCode::UNAUTHENTICATED,
        grpc::StatusCode::FAILED_PRECONDITION}) {
    ScriptedServer server;
    options_.channel = server.InProcessChannel();
    server.Enqueue("GetJob", {Error(code, "nope")});
    Client client(options_);
    CallResult<wf::Job> result = client.GetJob(JobRequest());
    EXPECT_EQ(static_cast<int>(result.status().code()), code);
    EXPECT_EQ(result.status().message(), "nope");
    EXPECT_FALSE(IsRetryExhausted(result.status()));
    EXPECT_EQ(server.count("GetJob"), 1);
  }
  EXPECT_THAT(clock_->sleeps(), IsEmpty());
}

TEST_F(ClientTest, RecoversAfterTransientFailures) {
  server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE)});
  server_.Enqueue("GetJob", {Error(grpc::StatusCode::INTERNAL)});
  Client client(options_);
  EXPECT_TRUE(client.GetJob(JobRequest()).ok());
  EXPECT_EQ(server_.count("GetJob"), 3);
  EXPECT_THAT(clock_->sleeps(), SizeIs(2));
}

TEST_F(ClientTest, BackoffIsCappedAtSixtySeconds) {
  RetryPolicy retry = RetryPolicy::Default();
  retry.max_retries = 9;
  retry.jitter = Fixed(0.5);
  options_.default_retry = retry;
  for (int i = 0; i < 10; ++i) {
    server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE)});
  }
  Client client(options_);
  EXPECT_TRUE(IsRetryExhausted(client.GetJob(JobRequest()).status()));
  EXPECT_EQ(server_.count("GetJob"), 10);
  EXPECT_THAT(
      clock_->sleeps(),
      ElementsAre(absl::Seconds(0.6), absl::Seconds(1.7), absl::Seconds(3.9),
                  absl::Seconds(8.3), absl::Seconds(17.1), absl::Seconds(34.7),
                  absl::Seconds(60), absl::Seconds(60), absl::Seconds(60)));
}

TEST_F(ClientTest, SeededJitterGivesReproducibleSleeps) {
  std::vector<absl::Duration> runs[2];
  for (auto& sleeps : runs) {
    ScriptedServer server;
    auto clock = std::make_shared<SimulatedClock>();
    options_.channel = server.InProcessChannel();
    options_.clock = clock;
    RetryPolicy retry = RetryPolicy::Default();
    retry.jitter = RetryPolicy::SeededJitter(1234);
    options_.default_retry = retry;
    for (int i = 0; i < 6; ++i) {
      server.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE)});
    }
    Client client(options_);
    client.GetJob(JobRequest()).status().IgnoreError();
    sleeps = clock->sleeps();
  }
  EXPECT_THAT(runs[0], SizeIs(5));
  EXPECT_EQ(runs[0], runs[1]);
  for (int i = 1; i < 5; ++i) EXPECT_GT(runs[0][i], runs[0][i - 1]);
}

TEST_F(ClientTest, PerCallRetryOverrideAndNoRetry) {
  for (int i = 0; i < 3; ++i) {
    server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE)});
  }
  Client client(options_);
  CallOptions none;
  none.retry = RetryPolicy::None();
  CallResult<wf::Job> once = client.GetJob(JobRequest(), none);
  EXPECT_EQ(once.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(IsRetryExhausted(once.status()));
  EXPECT_EQ(server_.count("GetJob"), 1);

  CallOptions one_retry;
  one_retry.retry = RetryPolicy::Default();
  one_retry.retry->max_retries = 1;
  one_retry.retry->jitter = Fixed(0);
  CallResult<wf::Job> twice = client.GetJob(JobRequest(), one_retry);
  EXPECT_TRUE(IsRetryExhausted(twice.status()));
  EXPECT_EQ(server_.count("GetJob"), 3);
}

TEST_F(ClientTest, PerApiRetry) {
  options_.api_retry["GetJob"] = RetryPolicy::None();
  server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE)});
  Client client(options_);
  EXPECT_EQ(client.GetJob(JobRequest()).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.count("GetJob"), 1);
  EXPECT_EQ(client.api().at("GetJob").retry.max_retries, 0);
}

TEST_F(ClientTest, PermissionDeniedWithRetryAfterSeconds) {
  Reply denied;
  denied.status = Error(grpc::StatusCode::PERMISSION_DENIED, "quota");
  denied.trailing_metadata = {{"retry-after", "45"}};
  server_.Enqueue("GetJob", denied);
  Client client(options_);
  EXPECT_TRUE(client.GetJob(JobRequest()).ok());
  EXPECT_EQ(server_.count("GetJob"), 2);
  EXPECT_THAT(clock_->sleeps(), ElementsAre(absl::Seconds(45)));
}

// The Python client would wait the full 120 s; this one waits at most
// RetryPolicy::max_server_delay (60 s by default), unless told otherwise.
TEST_F(ClientTest, RetryAfterPastTheCapIsCutToIt) {
  Reply denied;
  denied.status = Error(grpc::StatusCode::PERMISSION_DENIED, "quota");
  denied.trailing_metadata = {{"retry-after", "120"}};
  server_.Enqueue("GetJob", denied);
  Client client(options_);
  EXPECT_TRUE(client.GetJob(JobRequest()).ok());
  server_.Enqueue("GetJob", denied);
  CallOptions uncapped;
  uncapped.retry = *options_.default_retry;
  uncapped.retry->max_server_delay = absl::InfiniteDuration();
  EXPECT_TRUE(client.GetJob(JobRequest(), uncapped).ok());
  EXPECT_EQ(server_.count("GetJob"), 4);
  EXPECT_THAT(clock_->sleeps(),
              ElementsAre(absl::Seconds(60), absl::Seconds(120)));
}

TEST_F(ClientTest, PermissionDeniedWithRetryAfterHttpDate) {
  Reply denied;
  denied.status = Error(grpc::StatusCode::PERMISSION_DENIED, "quota");
  // The simulated clock reads 2026-01-01T00:00:00Z.
  denied.trailing_metadata = {{"retry-after", "Thu, 01 Jan 2026 00:30:00 GMT"}};
  server_.Enqueue("GetJob", denied);
  options_.default_retry->max_server_delay = absl::Hours(1);
  Client client(options_);
  EXPECT_TRUE(client.GetJob(JobRequest()).ok());
  EXPECT_THAT(clock_->sleeps(), ElementsAre(absl::Minutes(30)));
}

TEST_F(ClientTest, PermissionDeniedWithBadRetryAfterIsNotRetried) {
  Reply denied;
  denied.status = Error(grpc::StatusCode::PERMISSION_DENIED, "quota");
  denied.trailing_metadata = {{"retry-after", "later"}};
  server_.Enqueue("GetJob", denied);
  Client client(options_);
  CallResult<wf::Job> result = client.GetJob(JobRequest());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(GetTrailingMetadata(result.status(), "retry-after"),
              ::testing::Optional(std::string("later")));
  EXPECT_EQ(server_.count("GetJob"), 1);
}

TEST_F(ClientTest, CreateJob429IsNotRetriedWithoutNumRetries) {
  server_.Enqueue("CreateJob", {Error(grpc::StatusCode::RESOURCE_EXHAUSTED)});
  Client client(options_);
  CallResult<wf::Job> result = client.CreateJob(wf::CreateJobRequest());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(IsRetryExhausted(result.status()));
  EXPECT_EQ(server_.count("CreateJob"), 1);
}

TEST_F(ClientTest, CreateJob429WithNumRetriesHonoursPushback) {
  for (int i = 0; i < 2; ++i) {
    Reply busy;
    busy.status = Error(grpc::StatusCode::RESOURCE_EXHAUSTED, "429");
    busy.trailing_metadata = {{"grpc-retry-pushback-ms", "2000"}};
    server_.Enqueue("CreateJob", busy);
  }
  Client client(options_);
  CallOptions call;
  call.num_retries = 1;
  call.retry = std::nullopt;
  CallResult<wf::Job> result = client.CreateJob(wf::CreateJobRequest(), call);
  EXPECT_TRUE(IsRetryExhausted(result.status()));
  EXPECT_THAT(RetryAttempts(result.status()), SizeIs(2));
  EXPECT_EQ(server_.count("CreateJob"), 2);
  ASSERT_THAT(clock_->sleeps(), SizeIs(1));
  // 2 s of pushback plus U(0, 1) of jitter.
  EXPECT_GE(clock_->sleeps()[0], absl::Seconds(2));
  EXPECT_LT(clock_->sleeps()[0], absl::Seconds(3));
}

TEST_F(ClientTest, CreateJob429WithNumRetriesWithoutPushbackBacksOff) {
  server_.Enqueue("CreateJob", {Error(grpc::StatusCode::RESOURCE_EXHAUSTED)});
  Client client(options_);
  CallOptions call;
  call.num_retries = 2;
  EXPECT_TRUE(client.CreateJob(wf::CreateJobRequest(), call).ok());
  EXPECT_EQ(server_.count("CreateJob"), 2);
  ASSERT_THAT(clock_->sleeps(), SizeIs(1));
  EXPECT_LT(clock_->sleeps()[0], absl::Seconds(1.1));
}

TEST_F(ClientTest, CreateJobRetriesThreeTimesByDefault) {
  for (int i = 0; i < 4; ++i) {
    server_.Enqueue("CreateJob", {Error(grpc::StatusCode::UNAVAILABLE)});
  }
  Client client(options_);
  EXPECT_TRUE(
      IsRetryExhausted(client.CreateJob(wf::CreateJobRequest()).status()));
  EXPECT_EQ(server_.count("CreateJob"), 4);
}

TEST_F(ClientTest, NumRetriesIsValidated) {
  Client client(options_);
  CallOptions call;
  call.num_retries = -1;
  EXPECT_EQ(client.CreateJob(wf::CreateJobRequest(), call).status().code(),
            absl::StatusCode::kInvalidArgument);
  call.num_retries = 1;
  EXPECT_EQ(client.GetJob(JobRequest(), call).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.count(""), 0);
}

// ---- Timeouts ----

TEST_F(ClientTest, DefaultTimeoutsPerRpcKind) {
  Client client(options_);
  ASSERT_TRUE(client.GetJob(JobRequest()).ok());
  wf::WatchJobRequest watch;
  ASSERT_TRUE(client.WatchJob(watch)->Finish().ok());
  ASSERT_TRUE(
      client.ListAccessGrantsStream(discover::ListAccessGrantsStreamRequest())
          ->Finish()
          .ok());
  absl::Duration unary = server_.calls("GetJob")[0].time_left;
  EXPECT_GT(unary, absl::Seconds(4));
  EXPECT_LE(unary, absl::Seconds(5.5));
  absl::Duration stream = server_.calls("WatchJob")[0].time_left;
  EXPECT_GT(stream, absl::Seconds(86399));
  EXPECT_LE(stream, absl::Seconds(86400.5));
  absl::Duration grants = server_.calls("ListAccessGrantsStream")[0].time_left;
  EXPECT_GT(grants, absl::Seconds(4));
  EXPECT_LE(grants, absl::Seconds(5.5));
}

TEST_F(ClientTest, EveryAttemptGetsTheFullTimeout) {
  server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE)});
  server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE)});
  Client client(options_);
  CallOptions call;
  call.timeout = absl::Seconds(30);
  ASSERT_TRUE(client.GetJob(JobRequest(), call).ok());
  std::vector<RecordedCall> calls = server_.calls("GetJob");
  ASSERT_THAT(calls, SizeIs(3));
  for (const RecordedCall& c : calls) {
    EXPECT_GT(c.time_left, absl::Seconds(29));
    EXPECT_LE(c.time_left, absl::Seconds(30.5));
  }
}

TEST_F(ClientTest, HangingServerHitsTheDeadlineOnEveryAttempt) {
  for (int i = 0; i < 3; ++i) {
    Reply hang;
    hang.hang = true;
    server_.Enqueue("GetJob", hang);
  }
  RetryPolicy retry = RetryPolicy::Default();
  retry.max_retries = 2;
  retry.jitter = Fixed(0);
  CallOptions call;
  call.timeout = absl::Milliseconds(50);
  call.retry = retry;
  options_.channel = TcpChannel();
  Client client(options_);
  CallResult<wf::Job> result = client.GetJob(JobRequest(), call);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(IsRetryExhausted(result.status()));
  EXPECT_EQ(server_.count("GetJob"), 3);
}

TEST_F(ClientTest, NonPositiveTimeoutIsInvalid) {
  Client client(options_);
  CallOptions call;
  call.timeout = absl::Seconds(-1);
  CallResult<wf::Job> result = client.GetJob(JobRequest(), call);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("timeout"));
  EXPECT_EQ(client.WatchJob(wf::WatchJobRequest(), call)->Finish().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client.Health(absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(client.WaitForJob("j", absl::Seconds(-1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(server_.count(""), 0);
}

// ---- Health ----

TEST_F(ClientTest, HealthReturnsEachServingStatus) {
  Client client(options_);
  for (health::HealthCheckResponse::ServingStatus status :
       {health::HealthCheckResponse::SERVING,
        health::HealthCheckResponse::NOT_SERVING,
        health::HealthCheckResponse::UNKNOWN}) {
    health::HealthCheckResponse response;
    response.set_status(status);
    Reply reply;
    reply.messages = {Msg(response)};
    server_.Enqueue("Check", reply);
    absl::StatusOr<health::HealthCheckResponse::ServingStatus> got =
        client.Health();
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, status);
  }
  health::HealthCheckRequest sent;
  ASSERT_TRUE(sent.ParseFromString(server_.calls("Check")[0].request));
  EXPECT_EQ(sent.service(), "");
  EXPECT_THAT(Values(server_.calls("Check")[0].metadata, "x-wf-channel"),
              ElementsAre("v0-19"));
}

TEST_F(ClientTest, HealthReturnsErrors) {
  server_.Enqueue("Check", {Error(grpc::StatusCode::NOT_FOUND, "no service")});
  Client client(options_);
  EXPECT_EQ(client.Health().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, HealthHonoursItsTimeout) {
  Client client(options_);
  ASSERT_TRUE(client.Health(absl::Seconds(2)).ok());
  ASSERT_TRUE(client.Health().ok());
  std::vector<RecordedCall> calls = server_.calls("Check");
  EXPECT_GT(calls[0].time_left, absl::Seconds(1));
  EXPECT_LE(calls[0].time_left, absl::Seconds(2.5));
  EXPECT_GT(calls[1].time_left, absl::Seconds(4));
  EXPECT_LE(calls[1].time_left, absl::Seconds(5.5));
}

TEST_F(ClientTest, HealthOfAHangingServerTimesOut) {
  Reply hang;
  hang.hang = true;
  server_.Enqueue("Check", hang);
  options_.channel = TcpChannel();
  Client client(options_);
  CallOptions call;
  call.retry = RetryPolicy::None();
  EXPECT_EQ(client.Health(absl::Milliseconds(50), call).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ClientTest, HealthTimeoutBoundsEveryRetryAndBackoff) {
  // The real default policy (jitter and all); only time is simulated.
  options_.default_retry.reset();
  for (int i = 0; i < 10; ++i) {
    server_.Enqueue("Check", {Error(grpc::StatusCode::UNAVAILABLE, "down")});
  }
  Client client(options_);
  const absl::Time start = clock_->Now();
  absl::Status status = client.Health(absl::Seconds(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()), HasSubstr("1s budget"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("UNAVAILABLE: down"));
  EXPECT_LE(clock_->Now() - start, absl::Seconds(1));
  const int attempts = server_.count("Check");
  EXPECT_GE(attempts, 1);
  EXPECT_LE(attempts, 6);
  EXPECT_THAT(RetryAttempts(status), SizeIs(attempts));
  EXPECT_THAT(clock_->sleeps(), SizeIs(attempts - 1));
}

TEST_F(ClientTest, HealthClipsEachAttemptToWhatIsLeft) {
  for (int i = 0; i < 10; ++i) {
    server_.Enqueue("Check", {Error(grpc::StatusCode::UNAVAILABLE, "down")});
  }
  Client client(options_);  // Zero jitter: backoff 0.1, 0.2, 0.4, 0.8 s.
  absl::Status status = client.Health(absl::Seconds(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  // After 0.7 s of sleeps only 0.3 s is left: the 0.8 s backoff is not
  // slept and no fifth attempt is made.
  EXPECT_THAT(
      clock_->sleeps(),
      ElementsAre(absl::Seconds(0.1), absl::Seconds(0.2), absl::Seconds(0.4)));
  std::vector<RecordedCall> calls = server_.calls("Check");
  ASSERT_THAT(calls, SizeIs(4));
  const absl::Duration left[] = {absl::Seconds(1), absl::Seconds(0.9),
                                 absl::Seconds(0.7), absl::Seconds(0.3)};
  for (int i = 0; i < 4; ++i) {
    // gRPC's clock conversions may add a millisecond or so.
    EXPECT_LE(calls[i].time_left, left[i] + absl::Milliseconds(20)) << i;
    EXPECT_GT(calls[i].time_left, left[i] - absl::Seconds(0.5)) << i;
  }
}

TEST(ClientHealthTest, UnreachableServerStaysWithinTheTimeout) {
  // A port nothing listens on: connections are refused at once.
  int dead_port = 0;
  {
    ScriptedServer server;
    dead_port = server.Start("127.0.0.1:0");
    ASSERT_GT(dead_port, 0);
  }
  auto clock = std::make_shared<SimulatedClock>();
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = dead_port;
  options.use_insecure_channel = true;
  options.clock = clock;
  options.auth = std::make_shared<StaticTokenAuth>("t");
  Client client(options);
  const absl::Time start = clock->Now();
  const absl::Time real_start = absl::Now();
  absl::Status status = client.Health(absl::Seconds(2)).status();
  // The channel never connected: the refusal's UNAVAILABLE, with the budget.
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("Check could not connect within its 2s budget"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("last error: UNAVAILABLE"));
  EXPECT_LE(clock->Now() - start, absl::Seconds(2));
  EXPECT_THAT(RetryAttempts(status), ::testing::Not(IsEmpty()));
  EXPECT_LE(RetryAttempts(status).size(), 6);
  // Refused connections fail fast; each attempt's deadline bounds the rest.
  EXPECT_LT(absl::Now() - real_start, absl::Seconds(2) * 6);
}

TEST_F(ClientTest, HealthStillRecoversWithinItsBudget) {
  server_.Enqueue("Check", {Error(grpc::StatusCode::UNAVAILABLE)});
  health::HealthCheckResponse serving;
  serving.set_status(health::HealthCheckResponse::SERVING);
  Reply reply;
  reply.messages = {Msg(serving)};
  server_.Enqueue("Check", reply);
  Client client(options_);
  absl::StatusOr<health::HealthCheckResponse::ServingStatus> got =
      client.Health(absl::Seconds(1));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, health::HealthCheckResponse::SERVING);
  EXPECT_EQ(server_.count("Check"), 2);
}

TEST_F(ClientTest, ANegativeMaxServerDelayIsInvalid) {
  Client client(options_);
  CallOptions call;
  call.retry = RetryPolicy::Default();
  call.retry->max_server_delay = absl::Seconds(-1);
  absl::Status status = client.GetJob(JobRequest(), call).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("max_server_delay"));
  EXPECT_EQ(server_.count(""), 0);
}

// ---- CallOptions::budget ----

TEST_F(ClientTest, BudgetBoundsAttemptsAndBackoffsOfAnyCall) {
  for (int i = 0; i < 10; ++i) {
    server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE, "down")});
  }
  Client client(options_);  // Zero jitter: backoff 0.1, 0.2, 0.4, 0.8 s.
  CallOptions call;
  call.budget = absl::Seconds(1);
  const absl::Time start = clock_->Now();
  absl::Status status = client.GetJob(JobRequest(), call).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()), HasSubstr("GetJob"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("1s budget"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("(4 attempts)"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("last error: UNAVAILABLE: down"));
  EXPECT_THAT(RetryAttempts(status), SizeIs(4));
  // The 0.8 s backoff would overrun the 0.3 s left: not slept.
  EXPECT_THAT(
      clock_->sleeps(),
      ElementsAre(absl::Seconds(0.1), absl::Seconds(0.2), absl::Seconds(0.4)));
  EXPECT_LE(clock_->Now() - start, absl::Seconds(1));
  // Each attempt's deadline is min(5 s timeout, budget left).
  std::vector<RecordedCall> calls = server_.calls("GetJob");
  ASSERT_THAT(calls, SizeIs(4));
  const absl::Duration left[] = {absl::Seconds(1), absl::Seconds(0.9),
                                 absl::Seconds(0.7), absl::Seconds(0.3)};
  for (int i = 0; i < 4; ++i) {
    EXPECT_LE(calls[i].time_left, left[i] + absl::Milliseconds(20)) << i;
  }
}

TEST_F(ClientTest, WithoutABudgetRetriesRunOutAsBefore) {
  for (int i = 0; i < 10; ++i) {
    server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE, "down")});
  }
  Client client(options_);
  for (std::optional<absl::Duration> budget :
       {std::optional<absl::Duration>(),
        std::optional<absl::Duration>(absl::InfiniteDuration())}) {
    server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE, "down")});
    const int before = server_.count("GetJob");
    const size_t slept = clock_->sleeps().size();
    CallOptions call;
    call.budget = budget;
    absl::Status status = client.GetJob(JobRequest(), call).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
    EXPECT_TRUE(IsRetryExhausted(status));
    EXPECT_EQ(server_.count("GetJob") - before, 6);
    EXPECT_EQ(clock_->sleeps().size() - slept, 5);
    // The default 5 s per attempt, untouched.
    EXPECT_GT(server_.calls("GetJob")[before].time_left, absl::Seconds(4));
  }
}

TEST_F(ClientTest, ABudgetThatIsNotPositiveIsInvalid) {
  Client client(options_);
  for (absl::Duration budget : {absl::ZeroDuration(), absl::Seconds(-1)}) {
    CallOptions call;
    call.budget = budget;
    absl::Status status = client.GetJob(JobRequest(), call).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr("budget of GetJob"));
    EXPECT_EQ(client.WatchJob(wf::WatchJobRequest(), call)->Finish().code(),
              absl::StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(server_.count(""), 0);
}

TEST_F(ClientTest, BudgetBoundsStreamOpeningAndTheOpenStream) {
  for (int i = 0; i < 10; ++i) {
    server_.Enqueue("ListXYZ", {Error(grpc::StatusCode::UNAVAILABLE, "down")});
  }
  Client client(options_);  // Zero jitter: backoff 0.1, 0.2, 0.4, 0.8 s.
  CallOptions call;
  call.budget = absl::Seconds(1);
  absl::Status status = client.ListXYZ(wf::ListXYZRequest(), call)->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()), HasSubstr("1s budget"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("UNAVAILABLE: down"));
  EXPECT_EQ(server_.count("ListXYZ"), 4);
  std::vector<RecordedCall> calls = server_.calls("ListXYZ");
  EXPECT_LE(calls[3].time_left, absl::Seconds(0.3) + absl::Milliseconds(20));
  // A stream that opens lives at most until the budget ends (not 24 h).
  call.budget = absl::Seconds(3);
  Reply ok;
  ok.messages = {Msg(State(wf::Job::RUNNING))};
  server_.Enqueue("WatchJob", ok);
  ASSERT_TRUE(client.WatchJob(wf::WatchJobRequest(), call)->Finish().ok());
  EXPECT_LE(server_.calls("WatchJob")[0].time_left,
            absl::Seconds(3) + absl::Milliseconds(20));
}

TEST_F(ClientTest, HealthBudgetIsTheShorterOfItsTimeoutAndTheOptions) {
  for (int i = 0; i < 10; ++i) {
    server_.Enqueue("Check", {Error(grpc::StatusCode::UNAVAILABLE, "down")});
  }
  Client client(options_);
  CallOptions call;
  call.budget = absl::Milliseconds(250);
  absl::Status status = client.Health(absl::Seconds(10), call).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()), HasSubstr("250ms budget"));
  EXPECT_THAT(clock_->sleeps(),
              ElementsAre(absl::Seconds(0.1)));  // 0.2 s > 0.15 s left
}

TEST_F(ClientTest, TokenErrorOnALaterAttemptKeepsTheEarlierOnes) {
  // The token is there for the first attempt only.
  class OnceAuth : public Auth {
   public:
    absl::StatusOr<std::string> Token() override {
      if (calls_++ == 0) return std::string("t");
      return absl::UnauthenticatedError("token expired");
    }

   private:
    int calls_ = 0;
  };
  options_.auth = std::make_shared<OnceAuth>();
  options_.send_token_on_insecure_channel = true;
  server_.Enqueue("GetJob", {Error(grpc::StatusCode::UNAVAILABLE, "down")});
  Client client(options_);
  absl::Status status = client.GetJob(JobRequest()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(status.message()), HasSubstr("token expired"));
  std::vector<absl::Status> attempts = RetryAttempts(status);
  ASSERT_THAT(attempts, SizeIs(2));
  EXPECT_EQ(attempts[0].code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(attempts[1].code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(server_.count("GetJob"), 1);
}

// ---- Streams ----

TEST_F(ClientTest, StreamReaderYieldsEveryMessage) {
  Reply reply;
  for (const char* id : {"a", "b", "c"}) {
    wf::Job job;
    job.set_id(id);
    reply.messages.push_back(Msg(job));
  }
  reply.initial_metadata = {{"x-wf-warnings", "slow"}};
  server_.Enqueue("ListJobs", reply);
  Client client(options_);
  std::unique_ptr<StreamReader<wf::Job>> jobs =
      client.ListJobs(wf::ListJobsRequest());
  std::vector<std::string> ids;
  wf::Job job;
  while (jobs->Next(&job)) ids.push_back(job.id());
  EXPECT_TRUE(jobs->Finish().ok());
  EXPECT_THAT(ids, ElementsAre("a", "b", "c"));
  EXPECT_THAT(jobs->warnings(), ElementsAre("slow"));
}

TEST_F(ClientTest, StreamCallbackCanStopEarly) {
  Reply reply;
  for (int i = 0; i < 3; ++i) reply.messages.push_back(Msg(wf::Workflow()));
  server_.Enqueue("SearchWorkflows", reply);
  Client client(options_);
  int seen = 0;
  absl::Status status = client.SearchWorkflows(wf::SearchWorkflowsRequest(),
                                               [&](const wf::Workflow&) {
                                                 ++seen;
                                                 return false;
                                               });
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(seen, 1);
}

TEST_F(ClientTest, StreamOpeningIsRetriedButNotMidStream) {
  server_.Enqueue("ListXYZ", {Error(grpc::StatusCode::UNAVAILABLE)});
  Reply partial;
  partial.messages = {Msg(wf::XYZ())};
  partial.status = Error(grpc::StatusCode::UNAVAILABLE, "mid-stream");
  server_.Enqueue("ListXYZ", partial);
  Client client(options_);
  int seen = 0;
  absl::Status status =
      client.ListXYZ(wf::ListXYZRequest(), [&](const wf::XYZ&) {
        ++seen;
        return true;
      });
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(status.message(), "mid-stream");
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(server_.count("ListXYZ"), 2);
  EXPECT_THAT(clock_->sleeps(), SizeIs(1));
}

TEST_F(ClientTest, StreamErrorKeepsTrailers) {
  Reply reply;
  reply.status = Error(grpc::StatusCode::PERMISSION_DENIED, "no");
  reply.trailing_metadata = {{"x-reason", "because"}};
  server_.Enqueue("GetXYZSessionLogs", reply);
  Client client(options_);
  absl::Status status =
      client.GetXYZSessionLogs(wf::GetXYZSessionLogsRequest())->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(GetTrailingMetadata(status, "x-reason"),
              ::testing::Optional(std::string("because")));
}

TEST_F(ClientTest, StreamCanBeCancelledFromAnotherThread) {
  Reply reply;
  reply.messages = {Msg(State(wf::Job::RUNNING))};
  reply.hang = true;
  server_.Enqueue("WatchJob", reply);
  Client client(options_);
  std::unique_ptr<StreamReader<wf::Job::State>> states =
      client.WatchJob(wf::WatchJobRequest());
  wf::Job::State state;
  ASSERT_TRUE(states->Next(&state));
  std::thread canceller([&] { states->Cancel(); });
  EXPECT_FALSE(states->Next(&state));
  canceller.join();
  EXPECT_EQ(states->Finish().code(), absl::StatusCode::kCancelled);
}

// ---- Every typed call ----

// A message of type T from protobuf text (the test's own literals).
template <typename T>
T Text(const std::string& text) {
  T message;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &message))
      << text;
  return message;
}

// One typed method of Client, called against the ScriptedServer: what it
// must send (path, request, deadline) and the reply it must hand back.
struct TypedCall {
  std::string name;         // bare RPC name, the ScriptedServer's key
  std::string full_method;  // the path the server must see
  absl::Duration timeout;   // the default deadline
  // Enqueues a reply, makes the call with default options and returns
  // whether the client handed back exactly the reply (or a failure).
  std::function<::testing::AssertionResult(Client&, ScriptedServer&)> call;
  // The request, serialized, as the client was given it.
  std::string request;
};

template <typename Request, typename Response>
TypedCall UnaryRow(std::string service, std::string name,
                   CallResult<Response> (Client::*method)(const Request&,
                                                          CallOptions),
                   const std::string& request_text,
                   const std::string& response_text) {
  Request request = Text<Request>(request_text);
  Response response = Text<Response>(response_text);
  TypedCall out;
  out.name = name;
  out.full_method = absl::StrCat("/", service, "/", name);
  out.timeout = Client::kDefaultTimeout;
  out.request = request.SerializeAsString();
  out.call = [=](Client& client, ScriptedServer& server) {
    Reply reply;
    reply.messages = {Msg(response)};
    server.Enqueue(name, reply);
    CallResult<Response> result = (client.*method)(request, CallOptions());
    if (!result.ok()) {
      return ::testing::AssertionFailure() << result.status();
    }
    if (result->SerializeAsString() != response.SerializeAsString()) {
      return ::testing::AssertionFailure()
             << "got {" << result->ShortDebugString() << "}, want {"
             << response.ShortDebugString() << "}";
    }
    return ::testing::AssertionSuccess();
  };
  return out;
}

template <typename Request, typename Response>
TypedCall StreamRow(std::string service, std::string name,
                    std::unique_ptr<StreamReader<Response>> (Client::*method)(
                        const Request&, CallOptions),
                    absl::Duration timeout, const std::string& request_text,
                    const std::string& response_text) {
  Request request = Text<Request>(request_text);
  Response response = Text<Response>(response_text);
  TypedCall out;
  out.name = name;
  out.full_method = absl::StrCat("/", service, "/", name);
  out.timeout = timeout;
  out.request = request.SerializeAsString();
  out.call = [=](Client& client, ScriptedServer& server) {
    Reply reply;
    reply.messages = {Msg(response), Msg(response)};
    server.Enqueue(name, reply);
    std::unique_ptr<StreamReader<Response>> reader =
        (client.*method)(request, CallOptions());
    int received = 0;
    Response got;
    while (reader->Next(&got)) {
      if (got.SerializeAsString() != response.SerializeAsString()) {
        return ::testing::AssertionFailure()
               << "got {" << got.ShortDebugString() << "}, want {"
               << response.ShortDebugString() << "}";
      }
      ++received;
    }
    absl::Status status = reader->Finish();
    if (!status.ok()) return ::testing::AssertionFailure() << status;
    if (received != 2) {
      return ::testing::AssertionFailure() << received << " messages, want 2";
    }
    return ::testing::AssertionSuccess();
  };
  return out;
}

std::vector<TypedCall> EveryTypedCall() {
  const std::string health = "grpc.health.v1.Health";
  const std::string workflow = "descarteslabs.workflows.WorkflowAPI";
  const std::string job = "descarteslabs.workflows.JobAPI";
  const std::string xyz = "descarteslabs.workflows.XYZAPI";
  const std::string grant = "descarteslabs.discover.v0alpha.AccessGrantApi";
  const absl::Duration day = Client::kStreamTimeout;
  return {
      UnaryRow(health, "Check", &Client::Check, "service: 'svc'",
               "status: NOT_SERVING"),
      UnaryRow(workflow, "UpsertWorkflow", &Client::UpsertWorkflow,
               "id: 'me:w' title: 'T'", "id: 'me:w' title: 'T'"),
      UnaryRow(workflow, "GetWorkflow", &Client::GetWorkflow, "id: 'me:w'",
               "id: 'me:w'"),
      UnaryRow(workflow, "GetVersion", &Client::GetVersion,
               "id: 'me:w' version: '1.2.3'", "version: '1.2.3'"),
      StreamRow(workflow, "SearchWorkflows", &Client::SearchWorkflows, day,
                "email: 'me@x' name_prefix: 'w'", "id: 'me:w'"),
      UnaryRow(workflow, "DeleteWorkflow", &Client::DeleteWorkflow,
               "id: 'me:w'", ""),
      UnaryRow(workflow, "GetWmtsUrlTemplate", &Client::GetWmtsUrlTemplate, "",
               "wmts_url_template: 'https://t/{z}'"),
      UnaryRow(job, "CreateJob", &Client::CreateJob, "serialized_graft: '{}'",
               "id: 'j'"),
      StreamRow(job, "ListJobs", &Client::ListJobs, day,
                "start_datetime: '2026-01-01'", "id: 'j'"),
      UnaryRow(job, "GetJob", &Client::GetJob, "id: 'j'", "id: 'j'"),
      UnaryRow(job, "CancelJob", &Client::CancelJob, "id: 'j'", ""),
      StreamRow(job, "WatchJob", &Client::WatchJob, day, "id: 'j'",
                "stage: RUNNING"),
      UnaryRow(xyz, "CreateXYZ", &Client::CreateXYZ, "name: 'x'", "id: 'x1'"),
      UnaryRow(xyz, "GetXYZ", &Client::GetXYZ, "xyz_id: 'x1'", "id: 'x1'"),
      StreamRow(xyz, "ListXYZ", &Client::ListXYZ, day, "public: true",
                "id: 'x1'"),
      UnaryRow(xyz, "DeleteXYZ", &Client::DeleteXYZ, "xyz_id: 'x1'", ""),
      StreamRow(xyz, "GetXYZSessionLogs", &Client::GetXYZSessionLogs, day,
                "xyz_id: 'x1' session_id: 's'", "session_id: 's'"),
      UnaryRow(grant, "CreateAccessGrant", &Client::CreateAccessGrant,
               "access_grant { asset_name: 'a' }",
               "access_grant { asset_name: 'a' }"),
      UnaryRow(grant, "DeleteAccessGrant", &Client::DeleteAccessGrant,
               "access_grant { asset_name: 'a' }", "revoked: true"),
      UnaryRow(grant, "ListAccessGrants", &Client::ListAccessGrants,
               "asset_name: 'a' page_size: 7", "next_page: 'p2'"),
      // The Python client lists readers with the unary timeout (5 s).
      StreamRow(grant, "ListAccessGrantsStream",
                &Client::ListAccessGrantsStream, Client::kDefaultTimeout,
                "asset_name: 'a'", "access_grant { asset_name: 'a' }"),
      UnaryRow(grant, "ReplaceAccessGrant", &Client::ReplaceAccessGrant,
               "delete_access_grant { asset_name: 'a' } "
               "create_access_grant { asset_name: 'b' }",
               "access_grant { asset_name: 'b' }"),
  };
}

TEST_F(ClientTest, EveryTypedCallReachesItsRpcWithItsDefaults) {
  Client client(options_);
  std::vector<TypedCall> table = EveryTypedCall();
  std::set<std::string> names;
  for (const TypedCall& typed : table) {
    SCOPED_TRACE(typed.name);
    names.insert(typed.name);
    EXPECT_TRUE(typed.call(client, server_));
    std::vector<RecordedCall> calls = server_.calls(typed.name);
    ASSERT_THAT(calls, SizeIs(1));
    EXPECT_EQ(calls[0].full_method, typed.full_method);
    EXPECT_EQ(calls[0].request, typed.request);
    EXPECT_GT(calls[0].time_left, typed.timeout - absl::Seconds(1));
    EXPECT_LE(calls[0].time_left, typed.timeout + absl::Seconds(0.5));
    EXPECT_THAT(Values(calls[0].metadata, "x-wf-channel"),
                ElementsAre("v0-19"));
  }
  // The table misses no RPC the client knows (api() lacks two typed ones).
  for (const auto& [name, method] : client.api()) {
    EXPECT_EQ(names.count(name), 1) << name << " has no row";
    for (const TypedCall& typed : table) {
      if (typed.name == name) {
        EXPECT_EQ(typed.full_method, method.full_name);
      }
    }
  }
  EXPECT_THAT(table, SizeIs(client.api().size() + 2));
  EXPECT_THAT(clock_->sleeps(), IsEmpty());  // Nothing was retried.
}

// ---- WaitForJob ----

class WaitForJobTest : public ClientTest {
 protected:
  void EnqueueStates(std::vector<wf::Job::Stage> stages,
                     grpc::Status end = grpc::Status::OK) {
    Reply reply;
    for (wf::Job::Stage stage : stages)
      reply.messages.push_back(Msg(State(stage)));
    reply.status = end;
    server_.Enqueue("WatchJob", reply);
  }
};

TEST_F(WaitForJobTest, Succeeds) {
  EnqueueStates({wf::Job::QUEUED, wf::Job::RUNNING, wf::Job::SUCCEEDED});
  Client client(options_);
  std::vector<wf::Job::Stage> seen;
  WaitOptions wait;
  wait.on_state = [&](const wf::Job::State& s) { seen.push_back(s.stage()); };
  absl::StatusOr<wf::Job::State> state =
      client.WaitForJob("job-1", absl::Minutes(1), wait);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->stage(), wf::Job::SUCCEEDED);
  EXPECT_THAT(
      seen, ElementsAre(wf::Job::QUEUED, wf::Job::RUNNING, wf::Job::SUCCEEDED));
  wf::WatchJobRequest sent;
  ASSERT_TRUE(sent.ParseFromString(server_.calls("WatchJob")[0].request));
  EXPECT_EQ(sent.id(), "job-1");
  EXPECT_GT(server_.calls("WatchJob")[0].time_left, absl::Seconds(59));
}

TEST_F(WaitForJobTest, FailedReturnsTheMappedJobError) {
  Reply reply;
  wf::Job::State failed = State(wf::Job::FAILED);
  failed.mutable_error()->set_code(wf::ERROR_OOM);
  failed.mutable_error()->set_message("too big");
  reply.messages = {Msg(State(wf::Job::RUNNING)), Msg(failed)};
  server_.Enqueue("WatchJob", reply);
  Client client(options_);
  absl::Status status = client.WaitForJob("job-1", absl::Minutes(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            "Job(\"job-1\") failed with: code=ERROR_OOM, message=\"too big\"");
  EXPECT_THAT(JobErrorCode(status), ::testing::Optional(wf::ERROR_OOM));
}

TEST_F(WaitForJobTest, CancelledReturnsCancelled) {
  EnqueueStates({wf::Job::RUNNING, wf::Job::CANCELLED});
  Client client(options_);
  absl::Status status = client.WaitForJob("job-1", absl::Minutes(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_THAT(std::string(status.message()), HasSubstr("job-1"));
}

TEST_F(WaitForJobTest, ReopensWhenTheStreamEndsEarly) {
  EnqueueStates({wf::Job::QUEUED});
  EnqueueStates({wf::Job::RUNNING, wf::Job::SUCCEEDED});
  Client client(options_);
  EXPECT_TRUE(client.WaitForJob("job-1", absl::Minutes(1)).ok());
  EXPECT_EQ(server_.count("WatchJob"), 2);
  EXPECT_THAT(clock_->sleeps(), ElementsAre(absl::Seconds(0.1)));
  // The second stream only gets what is left of the timeout.
  EXPECT_LT(server_.calls("WatchJob")[1].time_left,
            absl::Seconds(60) - absl::Milliseconds(99));
}

TEST_F(WaitForJobTest, ReopensOnRetryableErrors) {
  EnqueueStates({wf::Job::RUNNING}, Error(grpc::StatusCode::UNAVAILABLE));
  EnqueueStates({}, Error(grpc::StatusCode::INTERNAL));
  EnqueueStates({wf::Job::SUCCEEDED});
  Client client(options_);
  EXPECT_TRUE(client.WaitForJob("job-1", absl::Minutes(1)).ok());
  EXPECT_EQ(server_.count("WatchJob"), 3);
}

TEST_F(WaitForJobTest, OtherErrorsAreReturned) {
  EnqueueStates({}, Error(grpc::StatusCode::NOT_FOUND, "no such job"));
  Client client(options_);
  absl::Status status = client.WaitForJob("job-1", absl::Minutes(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(server_.count("WatchJob"), 1);
  EXPECT_EQ(server_.count("CancelJob"), 0);
}

TEST_F(WaitForJobTest, DeadlineExceededCancelsTheJob) {
  EnqueueStates({wf::Job::RUNNING}, Error(grpc::StatusCode::DEADLINE_EXCEEDED));
  Client client(options_);
  absl::Status status = client.WaitForJob("job-1", absl::Minutes(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()), HasSubstr("job-1"));
  ASSERT_EQ(server_.count("CancelJob"), 1);
  wf::CancelJobRequest cancel;
  ASSERT_TRUE(cancel.ParseFromString(server_.calls("CancelJob")[0].request));
  EXPECT_EQ(cancel.id(), "job-1");
}

TEST_F(WaitForJobTest, DeadlineExceededWithoutCancel) {
  EnqueueStates({}, Error(grpc::StatusCode::DEADLINE_EXCEEDED));
  Client client(options_);
  WaitOptions wait;
  wait.cancel_on_timeout = false;
  EXPECT_EQ(client.WaitForJob("job-1", absl::Minutes(1), wait).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(server_.count("CancelJob"), 0);
}

TEST_F(WaitForJobTest, RealDeadlineOfAHangingStream) {
  Reply hang;
  hang.messages = {Msg(State(wf::Job::RUNNING))};
  hang.hang = true;
  server_.Enqueue("WatchJob", hang);
  options_.channel = TcpChannel();
  Client client(options_);
  absl::Status status =
      client.WaitForJob("job-1", absl::Milliseconds(50)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(server_.count("CancelJob"), 1);
}

TEST_F(WaitForJobTest, MisbehavingServerCannotSpinForever) {
  // With an empty queue every WatchJob ends at once without a message.
  Client client(options_);
  WaitOptions wait;
  wait.cancel_on_timeout = false;
  absl::Time start = clock_->Now();
  absl::Status status =
      client.WaitForJob("job-1", absl::Seconds(10), wait).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(clock_->Now() - start, absl::Seconds(10));
  // Backoff 0.1, 0.2, ... 3.2, then the 3.7 s left: 7 opens.
  EXPECT_EQ(server_.count("WatchJob"), 7);
}

// ---- Channels, factories, lifecycle ----

TEST(ClientChannelTest, InsecureFactoryIsObservedAndCloseReopens) {
  ScriptedServer server;
  int port = server.Start("127.0.0.1:0");
  ASSERT_GT(port, 0);
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  options.use_insecure_channel = true;
  options.auth = std::make_shared<StaticTokenAuth>("t");
  Client client(options);
  std::vector<std::string> targets;
  client.set_insecure_channel_factory(
      [&](const std::string& target, const grpc::ChannelArguments& args,
          grpc_compression_algorithm compression) {
        targets.push_back(target);
        return Client::InsecureChannelFactory(target, args, compression);
      });
  EXPECT_THAT(targets, IsEmpty());  // Nothing connects before the first call.
  ASSERT_TRUE(client.GetJob(wf::GetJobRequest()).ok());
  ASSERT_TRUE(client.GetJob(wf::GetJobRequest()).ok());
  EXPECT_THAT(targets, ElementsAre(absl::StrCat("127.0.0.1:", port)));
  std::vector<std::string> agents =
      Values(server.calls("GetJob")[0].metadata, "user-agent");
  ASSERT_THAT(agents, SizeIs(1));
  EXPECT_TRUE(absl::StartsWith(agents[0], "workflows-cpp/0.1.0")) << agents[0];

  client.Close();
  client.Close();                                        // Idempotent.
  ASSERT_TRUE(client.GetJob(wf::GetJobRequest()).ok());  // Reconnects.
  EXPECT_THAT(targets, SizeIs(2));
}

TEST(ClientChannelTest, SecureFactoryIsObserved) {
  // Local credentials stand in for TLS: gRPC sends call credentials over them.
  ScriptedServer server;
  int port = server.Start(
      "127.0.0.1:0", grpc::experimental::LocalServerCredentials(LOCAL_TCP));
  ASSERT_GT(port, 0);
  ClientOptions options;
  options.host = "localhost";
  options.port = port;
  options.auth = std::make_shared<StaticTokenAuth>("t");
  Client client(options);
  std::vector<std::string> targets;
  client.set_secure_channel_factory(
      [&](const std::string& target,
          const std::shared_ptr<grpc::ChannelCredentials>& credentials,
          const grpc::ChannelArguments& args,
          grpc_compression_algorithm compression) {
        targets.push_back(target);
        EXPECT_NE(credentials, nullptr);
        return Client::SecureChannelFactory(
            absl::StrCat("127.0.0.1:", port),
            grpc::experimental::LocalCredentials(LOCAL_TCP), args, compression);
      });
  CallResult<wf::Job> result = client.GetJob(wf::GetJobRequest());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(targets, ElementsAre(absl::StrCat("localhost:", port)));
  EXPECT_THAT(Values(server.calls("GetJob")[0].metadata, "authorization"),
              ElementsAre("Bearer t"));
}

TEST(ClientChannelTest, GivenSecureChannelCarriesTheToken) {
  ScriptedServer server;
  int port = server.Start(
      "127.0.0.1:0", grpc::experimental::LocalServerCredentials(LOCAL_TCP));
  ASSERT_GT(port, 0);
  ClientOptions options;
  options.channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                          grpc::experimental::LocalCredentials(LOCAL_TCP));
  options.auth = std::make_shared<StaticTokenAuth>("local");
  {
    Client client(options);  // Not declared secure: no token.
    ASSERT_TRUE(client.GetJob(wf::GetJobRequest()).ok());
  }
  options.channel_is_secure = true;
  {
    Client client(options);
    ASSERT_TRUE(client.GetJob(wf::GetJobRequest()).ok());
  }
  std::vector<RecordedCall> calls = server.calls("GetJob");
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_THAT(Values(calls[0].metadata, "authorization"), IsEmpty());
  EXPECT_THAT(Values(calls[1].metadata, "authorization"),
              ElementsAre("Bearer local"));
}

TEST(ClientChannelTest, DefaultsAndEnvironment) {
  unsetenv("DESCARTESLABS_WORKFLOWS_HOST");
  unsetenv("DESCARTESLABS_WORKFLOWS_PORT");
  EXPECT_EQ(*Client().target(), "workflows-api.descarteslabs.com:443");
  ClientOptions insecure;
  insecure.use_insecure_channel = true;
  EXPECT_EQ(*Client(insecure).target(), "workflows-api.descarteslabs.com:8000");
  setenv("DESCARTESLABS_WORKFLOWS_HOST", "example.com", 1);
  setenv("DESCARTESLABS_WORKFLOWS_PORT", "1234", 1);
  EXPECT_EQ(*Client().target(), "example.com:1234");
  setenv("DESCARTESLABS_WORKFLOWS_PORT", "http", 1);
  EXPECT_EQ(Client().target().status().code(),
            absl::StatusCode::kInvalidArgument);
  unsetenv("DESCARTESLABS_WORKFLOWS_HOST");
  unsetenv("DESCARTESLABS_WORKFLOWS_PORT");
  ClientOptions ipv6;
  ipv6.host = "::1";
  ipv6.port = 80;
  EXPECT_EQ(*Client(ipv6).target(), "[::1]:80");
}

TEST(ClientChannelTest, BadTargetsAreClearErrors) {
  for (const char* host : {"bad host", "localhost:443", "http://x", "[::1"}) {
    ClientOptions options;
    options.host = host;
    options.use_insecure_channel = true;
    Client client(options);
    absl::Status status = client.GetJob(wf::GetJobRequest()).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << host;
    EXPECT_THAT(std::string(status.message()), HasSubstr("host")) << host;
  }
  ClientOptions options;
  options.host = "localhost";
  options.port = 70000;
  EXPECT_THAT(std::string(Client(options).channel().status().message()),
              HasSubstr("70000"));
}

TEST(ClientChannelTest, BadCertificatesAreClearErrors) {
  ClientOptions options;
  options.host = "localhost";
  options.certificate = "not a certificate";
  Client client(options);
  absl::Status status = client.GetJob(wf::GetJobRequest()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("PEM"));

  setenv("SSL_CERT_FILE", "/nonexistent/ca.pem", 1);
  Client from_env(ClientOptions{});
  absl::StatusOr<std::string> roots = from_env.certificate();
  EXPECT_EQ(roots.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(roots.status().message()),
              HasSubstr("/nonexistent/ca.pem"));
  EXPECT_THAT(std::string(roots.status().message()),
              HasSubstr("SSL_CERT_FILE"));
  unsetenv("SSL_CERT_FILE");
  EXPECT_EQ(*Client().certificate(), "");  // System trust store.
}

TEST_F(ClientTest, CallAfterCloseReconnects) {
  Client client(options_);
  ASSERT_TRUE(client.GetJob(JobRequest()).ok());
  client.Close();
  ASSERT_TRUE(client.GetJob(JobRequest()).ok());
  EXPECT_TRUE(client.channel().ok());
  EXPECT_EQ(server_.count("GetJob"), 2);
}

TEST_F(ClientTest, TokenComesFromTheAuth) {
  Client client(options_);
  EXPECT_EQ(*client.token(), "secret-token");
}

TEST(ClientApiTest, TableHasEveryRegisteredRpc) {
  Client client(ClientOptions{});
  std::vector<std::string> names;
  for (const auto& [name, method] : client.api()) names.push_back(name);
  EXPECT_THAT(
      names,
      ::testing::UnorderedElementsAre(
          "Check", "UpsertWorkflow", "GetWorkflow", "GetVersion",
          "SearchWorkflows", "DeleteWorkflow", "GetWmtsUrlTemplate",
          "CreateJob", "ListJobs", "GetJob", "CancelJob", "WatchJob",
          "CreateXYZ", "GetXYZ", "ListXYZ", "DeleteXYZ", "GetXYZSessionLogs",
          "CreateAccessGrant", "DeleteAccessGrant", "ListAccessGrantsStream"));
  const ApiMethod& watch = client.api().at("WatchJob");
  EXPECT_TRUE(watch.server_streaming);
  EXPECT_EQ(watch.default_timeout, Client::kStreamTimeout);
  EXPECT_EQ(watch.full_name, "/descarteslabs.workflows.JobAPI/WatchJob");
  EXPECT_EQ(client.api().at("GetJob").default_timeout, Client::kDefaultTimeout);
  EXPECT_EQ(client.api().at("ListAccessGrantsStream").default_timeout,
            Client::kDefaultTimeout);
  EXPECT_EQ(client.api().at("CreateJob").retry.max_retries, 3);
  EXPECT_EQ(client.api().at("Check").retry.max_retries, 5);
  EXPECT_EQ(client.api().at("Check").full_name, "/grpc.health.v1.Health/Check");
  EXPECT_EQ(Client::kDefaultTimeout, absl::Seconds(5));
  EXPECT_EQ(Client::kStreamTimeout, absl::Seconds(86400));
}

TEST(DefaultClientTest, SetGetAndConcurrentAccess) {
  auto mine = std::make_shared<Client>(ClientOptions{});
  Client::SetDefaultClient(mine);
  EXPECT_EQ(Client::GetDefaultClient(), mine);
  Client::SetDefaultClient(nullptr);
  std::shared_ptr<Client> fresh = Client::GetDefaultClient();
  ASSERT_NE(fresh, nullptr);
  EXPECT_NE(fresh, mine);
  EXPECT_EQ(Client::GetDefaultClient(), fresh);

  std::atomic<int> null_seen{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (t % 2 == 0 && i % 10 == 0) {
          Client::SetDefaultClient(i % 20 == 0 ? nullptr : mine);
        }
        if (Client::GetDefaultClient() == nullptr) ++null_seen;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(null_seen.load(), 0);
  Client::SetDefaultClient(mine);
  EXPECT_EQ(Client::GetDefaultClient(), mine);
  Client::SetDefaultClient(nullptr);
}

}  // namespace
}  // namespace workflows
