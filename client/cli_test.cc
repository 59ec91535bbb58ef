#include "client/cli.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "client/test_server.h"
#include "fake_server/fake_workflows_server.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace workflows {
namespace {

using ::testing::HasSubstr;
using ::workflows::testing::Msg;
using ::workflows::testing::Reply;
using ::workflows::testing::ScriptedServer;

class CliTest : public ::testing::Test {
 protected:
  CliTest() {
    ClientOptions options;
    options.channel = server_.InProcessChannel();
    options.clock = clock_;
    options.auth = std::make_shared<StaticTokenAuth>("t");
    client_ = std::make_unique<Client>(options);
  }

  int Run(std::vector<std::string> args, CliConfig config = {}) {
    out_.str("");
    err_.str("");
    return RunCliWithClient(*client_, config, args, out_, err_);
  }

  void EnqueueHealth(health::HealthCheckResponse::ServingStatus status) {
    health::HealthCheckResponse response;
    response.set_status(status);
    Reply reply;
    reply.messages = {Msg(response)};
    server_.Enqueue("Check", reply);
  }

  // The next `times` GetJob calls answer `job`.
  void EnqueueGetJob(const wf::Job& job, int times = 1) {
    Reply reply;
    reply.messages = {Msg(job)};
    for (int i = 0; i < times; ++i) server_.Enqueue("GetJob", reply);
  }

  std::shared_ptr<SimulatedClock> clock_ = std::make_shared<SimulatedClock>();
  ScriptedServer server_;
  std::unique_ptr<Client> client_;
  std::ostringstream out_, err_;
};

TEST_F(CliTest, HealthExitsZeroOnlyWhenServing) {
  EnqueueHealth(health::HealthCheckResponse::SERVING);
  EXPECT_EQ(Run({"health"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("SERVING"));

  EnqueueHealth(health::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Run({"health"}), kHealthUnhealthy);
  EXPECT_THAT(err_.str(), HasSubstr("NOT_SERVING"));

  EnqueueHealth(health::HealthCheckResponse::UNKNOWN);
  EXPECT_EQ(Run({"health"}), kHealthUnhealthy);
  EXPECT_THAT(err_.str(), HasSubstr("UNKNOWN"));

  server_.Enqueue("Check",
                  {grpc::Status(grpc::StatusCode::NOT_FOUND, "no such")});
  EXPECT_EQ(Run({"health"}), kHealthRpcFailure);
  EXPECT_THAT(err_.str(), HasSubstr("NOT_FOUND: no such"));
}

TEST_F(CliTest, HealthUsesTheTimeoutFlag) {
  CliConfig config;
  config.timeout = absl::Seconds(2);
  EXPECT_EQ(Run({"health"}, config), kHealthUnhealthy);  // UNKNOWN by default.
  EXPECT_LE(server_.calls("Check")[0].time_left, absl::Seconds(2.5));
}

TEST_F(CliTest, HealthOfAnUnavailableServerIsBoundedByTheTimeout) {
  for (int i = 0; i < 10; ++i) {
    server_.Enqueue("Check",
                    {grpc::Status(grpc::StatusCode::UNAVAILABLE, "down")});
  }
  CliConfig config;
  config.timeout = absl::Seconds(1);
  const absl::Time start = clock_->Now();
  // An in-process channel has no connection step: an RPC failure.
  EXPECT_EQ(Run({"health"}, config), kHealthRpcFailure);
  EXPECT_LE(clock_->Now() - start, absl::Seconds(1));
  EXPECT_LE(server_.count("Check"), 6);
  EXPECT_THAT(err_.str(), HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_THAT(err_.str(), HasSubstr("UNAVAILABLE: down"));
}

TEST_F(CliTest, GetJobAsTextAndJson) {
  wf::Job job;
  job.set_id("abc");
  EnqueueGetJob(job, 2);
  EXPECT_EQ(Run({"get-job", "abc"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("id: \"abc\""));
  CliConfig json;
  json.json = true;
  EXPECT_EQ(Run({"get-job", "abc"}, json), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("{\"id\":\"abc\"}"));
  wf::GetJobRequest sent;
  ASSERT_TRUE(sent.ParseFromString(server_.calls("GetJob")[0].request));
  EXPECT_EQ(sent.id(), "abc");
}

TEST_F(CliTest, HealthAsJson) {
  EnqueueHealth(health::HealthCheckResponse::SERVING);
  CliConfig json;
  json.json = true;
  EXPECT_EQ(Run({"health"}, json), kExitOk);
  EXPECT_EQ(out_.str(), "{\"status\":\"SERVING\"}\n");
}

TEST_F(CliTest, TextResponsesEndWithASeparatorLine) {
  wf::Job job;
  job.set_id("abc");
  EnqueueGetJob(job);
  EXPECT_EQ(Run({"get-job", "abc"}), kExitOk);
  EXPECT_EQ(out_.str(), "id: \"abc\"\n---\n");
}

// A response JSON cannot represent is an error that says so; the CLI never
// prints "{}" or anything else in its place.
TEST_F(CliTest, AResponseJsonCannotPrintIsAnError) {
  wf::Job job;
  job.set_id("abc");
  job.mutable_expires_timestamp()->set_seconds(int64_t{1} << 40);  // > 9999 AD
  EnqueueGetJob(job);
  CliConfig json;
  json.json = true;
  EXPECT_EQ(Run({"get-job", "abc"}, json), kExitFailure);
  EXPECT_EQ(out_.str(), "");
  EXPECT_THAT(err_.str(), HasSubstr("printing the response failed"));
  EXPECT_THAT(err_.str(), HasSubstr("cannot print the Job as JSON"));
}

TEST_F(CliTest, ErrorsNameTheRpcAndExitNonZero) {
  server_.Enqueue("GetWorkflow",
                  {grpc::Status(grpc::StatusCode::NOT_FOUND, "gone")});
  EXPECT_EQ(Run({"get-workflow", "me:wf"}), kExitFailure);
  EXPECT_THAT(err_.str(), HasSubstr("GetWorkflow failed: NOT_FOUND: gone"));
}

TEST_F(CliTest, CreateJobTakesATextRequestAndNumRetries) {
  CliConfig config;
  config.request = "serialized_graft: \"{}\" channel: \"v0-19\"";
  config.num_retries = 1;
  server_.Enqueue("CreateJob",
                  {grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "429")});
  EXPECT_EQ(Run({"create-job"}, config), kExitOk);
  EXPECT_EQ(server_.count("CreateJob"), 2);  // 429 retried with num_retries.
  wf::CreateJobRequest sent;
  ASSERT_TRUE(sent.ParseFromString(server_.calls("CreateJob")[0].request));
  EXPECT_EQ(sent.serialized_graft(), "{}");

  config.request = "no_such_field: 1";
  EXPECT_EQ(Run({"create-job"}, config), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("CreateJobRequest"));
}

TEST_F(CliTest, WatchJobPrintsEveryState) {
  Reply reply;
  for (wf::Job::Stage stage : {wf::Job::RUNNING, wf::Job::SUCCEEDED}) {
    wf::Job::State state;
    state.set_stage(stage);
    reply.messages.push_back(Msg(state));
  }
  server_.Enqueue("WatchJob", reply);
  EXPECT_EQ(Run({"watch-job", "abc"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("stage: RUNNING"));
  EXPECT_THAT(out_.str(), HasSubstr("stage: SUCCEEDED"));
}

TEST_F(CliTest, SearchAndCancel) {
  Reply reply;
  wf::Workflow workflow;
  workflow.set_id("me:one");
  reply.messages = {Msg(workflow)};
  server_.Enqueue("SearchWorkflows", reply);
  CliConfig config;
  config.request = "name_prefix: \"o\"";
  EXPECT_EQ(Run({"search-workflows"}, config), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("me:one"));
  EXPECT_EQ(Run({"cancel-job", "abc"}), kExitOk);
  EXPECT_EQ(server_.count("CancelJob"), 1);
}

TEST_F(CliTest, UsageErrors) {
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("no command"));
  EXPECT_EQ(Run({"frobnicate"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("unknown command \"frobnicate\""));
  EXPECT_EQ(Run({"get-job"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("get-job takes 1 argument"));
  CliConfig config;
  config.num_retries = 2;
  EXPECT_EQ(Run({"get-job", "x"}, config), kExitUsage);
  // health reports usage errors as grpc_health_probe does: 1.
  EXPECT_EQ(Run({"health", "extra"}), kHealthInvalidArguments);
  EXPECT_THAT(err_.str(), HasSubstr("health takes 0 arguments"));
  EXPECT_EQ(Run({"health"}, config), kHealthInvalidArguments);
  EXPECT_THAT(err_.str(), HasSubstr("--num_retries"));
  EXPECT_EQ(server_.count(""), 0);
}

TEST(CliOptionsTest, ParseTarget) {
  ClientOptions options;
  ASSERT_TRUE(ParseTarget("localhost:8000", &options).ok());
  EXPECT_EQ(options.host, "localhost");
  EXPECT_EQ(options.port, 8000);
  ASSERT_TRUE(ParseTarget("[::1]:443", &options).ok());
  EXPECT_EQ(options.host, "::1");
  for (const char* bad : {"localhost", ":80", "host:", "host:0", "host:99999",
                          "::1:80", "host:http"}) {
    absl::Status status = ParseTarget(bad, &options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(status.message()), HasSubstr("--target")) << bad;
  }
}

TEST(CliOptionsTest, BadFlagsAreUsageErrors) {
  CliConfig config;
  config.ca_cert = "/nonexistent/ca.pem";
  std::ostringstream out, err;
  EXPECT_EQ(RunCli(config, {"get-job", "x"}, out, err), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("/nonexistent/ca.pem"));
  EXPECT_EQ(RunCli(config, {"health"}, out, err), kHealthInvalidArguments);

  config = CliConfig();
  config.timeout = absl::Seconds(-1);
  EXPECT_EQ(RunCli(config, {"get-job", "x"}, out, err), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--timeout"));
  EXPECT_EQ(RunCli(config, {"health"}, out, err), kHealthInvalidArguments);

  config = CliConfig();
  config.target = "nonsense";
  EXPECT_EQ(RunCli(config, {"get-job", "x"}, out, err), kExitUsage);
  EXPECT_EQ(RunCli(config, {"health"}, out, err), kHealthInvalidArguments);
}

TEST(CliOptionsTest, TokenAndInsecure) {
  CliConfig config;
  config.token = "abc";
  config.insecure = true;
  config.target = "127.0.0.1:9";
  absl::StatusOr<ClientOptions> options = MakeClientOptions(config);
  ASSERT_TRUE(options.ok());
  EXPECT_TRUE(options->use_insecure_channel);
  EXPECT_EQ(*options->auth->Token(), "abc");
}

// ---- health against the fake server over TCP: grpc_health_probe's codes ----

class CliHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<fake::FakeWorkflowsServer>> server =
        fake::FakeWorkflowsServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    config_.target = server_->address();
    config_.insecure = true;
    config_.timeout = absl::Seconds(5);
  }

  int Health() {
    out_.str("");
    err_.str("");
    return RunCli(config_, {"health"}, out_, err_);
  }

  void AddRule(const std::string& text) {
    fake::Rule rule;
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &rule));
    ASSERT_TRUE(server_->script().AddRule(rule).ok());
  }

  std::unique_ptr<fake::FakeWorkflowsServer> server_;
  CliConfig config_;
  std::ostringstream out_, err_;
};

TEST_F(CliHealthTest, ServingIsZero) {
  EXPECT_EQ(Health(), kHealthServing) << err_.str();
  EXPECT_EQ(out_.str(), "status: SERVING\n");
}

TEST_F(CliHealthTest, NotServingIsFour) {
  for (auto status : {health::HealthCheckResponse::NOT_SERVING,
                      health::HealthCheckResponse::UNKNOWN,
                      health::HealthCheckResponse::SERVICE_UNKNOWN}) {
    server_->SetHealth("", status);
    EXPECT_EQ(Health(), kHealthUnhealthy) << status;
    EXPECT_THAT(
        err_.str(),
        HasSubstr(health::HealthCheckResponse::ServingStatus_Name(status)));
  }
}

TEST_F(CliHealthTest, AnRpcErrorAfterConnectingIsThree) {
  AddRule("method: 'Check' behavior { fail { code: 'NOT_FOUND' } }");
  EXPECT_EQ(Health(), kHealthRpcFailure);
  EXPECT_THAT(err_.str(), HasSubstr("NOT_FOUND"));
  server_->Reset();
  // A server that is reachable but lets the check run out of time.
  AddRule("method: 'Check' behavior { expire_deadline: true }");
  EXPECT_EQ(Health(), kHealthRpcFailure);
  EXPECT_THAT(err_.str(), HasSubstr("DEADLINE_EXCEEDED"));
}

TEST_F(CliHealthTest, NothingListeningIsTwo) {
  server_->Shutdown();
  server_.reset();  // The port is closed: connections are refused.
  config_.timeout = absl::Milliseconds(300);
  EXPECT_EQ(Health(), kHealthConnectionFailure);
  EXPECT_THAT(err_.str(), HasSubstr("failed to connect to"));
  EXPECT_THAT(err_.str(), HasSubstr("within 300ms"));
}

TEST_F(CliHealthTest, ATlsHandshakeThatFailsIsTwo) {
  config_.insecure = false;  // TLS to a plaintext server never connects.
  config_.timeout = absl::Milliseconds(300);
  EXPECT_EQ(Health(), kHealthConnectionFailure);
  EXPECT_THAT(err_.str(), HasSubstr("failed to connect to"));
}

TEST_F(CliHealthTest, OtherCommandsKeepTheirExitCodes) {
  AddRule("method: 'GetJob' behavior { fail { code: 'NOT_FOUND' } }");
  std::ostringstream out, err;
  EXPECT_EQ(RunCli(config_, {"get-job", "x"}, out, err), kExitFailure);
  EXPECT_EQ(RunCli(config_, {"get-job"}, out, err), kExitUsage);
}

// ---- the token's sources ----

// The value, or the error as text, so a failure shows why.
std::string ValueOrStatus(const absl::StatusOr<std::string>& value) {
  return value.ok() ? *value : value.status().ToString();
}

class TokenFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& contents) {
    std::string path = absl::StrCat(::testing::TempDir(), "/", name);
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << contents;
    return path;
  }
};

TEST_F(TokenFileTest, TrimsOneTrailingNewline) {
  EXPECT_EQ(ValueOrStatus(ReadTokenFile(Write("plain", "abc.def"))), "abc.def");
  EXPECT_EQ(ValueOrStatus(ReadTokenFile(Write("lf", "abc.def\n"))), "abc.def");
  EXPECT_EQ(ValueOrStatus(ReadTokenFile(Write("crlf", "abc.def\r\n"))),
            "abc.def");
}

TEST_F(TokenFileTest, RejectsEmptyHugeMultiLineAndMissingFiles) {
  for (const std::string& empty : {std::string(), std::string("\n")}) {
    absl::StatusOr<std::string> token = ReadTokenFile(Write("empty", empty));
    EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(token.status().message()), HasSubstr("is empty"));
  }
  const std::string big =
      Write("big", std::string(kMaxTokenFileBytes + 1, 'a'));
  absl::StatusOr<std::string> token = ReadTokenFile(big);
  EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(token.status().message()), HasSubstr(big));
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("larger than 65536 bytes"));
  EXPECT_TRUE(
      ReadTokenFile(Write("max", std::string(kMaxTokenFileBytes, 'a'))).ok());

  token = ReadTokenFile(Write("two", "abc\n\n"));
  EXPECT_EQ(token.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("byte 0x0a at offset 3"));

  token = ReadTokenFile("/nonexistent/token");
  EXPECT_EQ(token.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(token.status().message()),
              HasSubstr("/nonexistent/token"));
}

TEST_F(TokenFileTest, FlagsEnvironmentAndPrecedence) {
  ASSERT_EQ(setenv("DESCARTESLABS_TOKEN", "from-env", 1), 0);
  CliConfig config;
  config.insecure = true;
  config.target = "127.0.0.1:9";

  // Neither flag: the client's default, $DESCARTESLABS_TOKEN.
  absl::StatusOr<ClientOptions> options = MakeClientOptions(config);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(ValueOrStatus(Client(*options).token()), "from-env");

  // A flag wins over the environment.
  config.token_file = Write("token", "from-file\n");
  options = MakeClientOptions(config);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(ValueOrStatus(Client(*options).token()), "from-file");

  // Two flags: an error, whichever command.
  config.token = "from-flag";
  options = MakeClientOptions(config);
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(options.status().message()),
              HasSubstr("--token and --token_file"));
  std::ostringstream out, err;
  EXPECT_EQ(RunCli(config, {"get-job", "x"}, out, err), kExitUsage);
  EXPECT_EQ(RunCli(config, {"health"}, out, err), kHealthInvalidArguments);
  EXPECT_THAT(err.str(), HasSubstr("--token and --token_file"));

  // A bad file is a usage error naming it.
  config.token.clear();
  config.token_file = Write("empty-token", "");
  EXPECT_EQ(RunCli(config, {"get-job", "x"}, out, err), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("empty-token\" is empty"));
  ASSERT_EQ(unsetenv("DESCARTESLABS_TOKEN"), 0);
}

}  // namespace
}  // namespace workflows
