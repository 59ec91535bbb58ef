// workflows_fake_server --tls_fault with the real C++ client: every fault
// makes the client's calls fail with UNAVAILABLE naming the failed handshake,
// the same server without a fault is reachable, and bad flag combinations
// are usage errors (exit code 2) that say what is accepted.

#include <sys/stat.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/client.h"
#include "client/clock.h"
#include "client/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/scenarios/server_process.h"

namespace workflows {
namespace testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::SizeIs;

// A client of the server's port that trusts `dir`/ca.pem. It dials
// 127.0.0.1, a name the fault-free certificate carries and the wrong_host
// one does not. Its clock is simulated, so retries do not sleep.
ClientOptions TrustingOptions(const ServerProcess& server,
                              const std::string& dir) {
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = server.port();
  options.certificate = ReadFile(dir + "/ca.pem");
  options.auth = std::make_shared<StaticTokenAuth>("token");
  options.clock = std::make_shared<SimulatedClock>();
  return options;
}

struct FaultCase {
  std::string fault;
  // What the final error says about the handshake.
  std::string handshake_error;
};

constexpr char kVerifyFailed[] =
    "Ssl handshake failed: SSL_ERROR_SSL: error:0A000086:SSL "
    "routines::certificate verify failed";

class TlsFaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(TlsFaultTest, ClientCallsFailUnavailableNamingTheHandshake) {
  const std::string dir = TempPath("tls_" + GetParam().fault);
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
      {"--tls_self_signed_dir=" + dir, "--tls_fault=" + GetParam().fault});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->StdoutText(),
              HasSubstr("(TLS, faulty certificate: " + GetParam().fault + ")"));
  // Every file of a faulty bundle is private.
  for (const char* name : {"ca.pem", "server.pem", "server.key"}) {
    struct stat info;
    ASSERT_EQ(stat((dir + "/" + name).c_str(), &info), 0) << name;
    EXPECT_EQ(info.st_mode & 0777, 0600) << name;
  }

  Client client(TrustingOptions(**server, dir));
  wf::GetWorkflowRequest request;
  request.set_id("ci@example.com:ndvi");
  absl::Status status = client.GetWorkflow(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr("Maximum retry attempts calling GetWorkflow (6 "
                              "attempts); last error: UNAVAILABLE: "),
                    HasSubstr(GetParam().handshake_error)))
      << status;
  // Every attempt failed the same way.
  std::vector<absl::Status> attempts = RetryAttempts(status);
  ASSERT_THAT(attempts, SizeIs(6));
  for (const absl::Status& attempt : attempts) {
    EXPECT_EQ(attempt.code(), absl::StatusCode::kUnavailable) << attempt;
  }

  // Health() reports the handshake's UNAVAILABLE too, within its budget.
  absl::Status health = client.Health(absl::Seconds(5)).status();
  EXPECT_EQ(health.code(), absl::StatusCode::kUnavailable) << health;
  EXPECT_THAT(std::string(health.message()),
              AllOf(HasSubstr("Check could not connect within its 5s budget"),
                    HasSubstr(GetParam().handshake_error)))
      << health;

  absl::StatusOr<ProcessResult> stopped = (*server)->Stop(SIGTERM);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(stopped->exit_code, 0) << stopped->stderr_text;
}

INSTANTIATE_TEST_SUITE_P(
    EveryFault, TlsFaultTest,
    ::testing::Values(FaultCase{"expired", kVerifyFailed},
                      FaultCase{"not_yet_valid", kVerifyFailed},
                      FaultCase{
                          "wrong_host",
                          "Peer name 127.0.0.1 is not in peer certificate"},
                      FaultCase{"untrusted_ca", kVerifyFailed}),
    [](const ::testing::TestParamInfo<FaultCase>& info) {
      return info.param.fault;
    });

TEST(TlsFaultFlagsTest, WithoutAFaultTheSameClientSucceeds) {
  const std::string dir = TempPath("tls_no_fault");
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--tls_self_signed_dir=" + dir});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->StdoutText(), HasSubstr("(TLS)"));
  Client client(TrustingOptions(**server, dir));
  absl::StatusOr<health::HealthCheckResponse::ServingStatus> health =
      client.Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, health::HealthCheckResponse::SERVING);
  wf::GetWorkflowRequest request;
  request.set_id("nobody@example.com:missing");
  // A complete round trip: the server's own answer.
  EXPECT_EQ(client.GetWorkflow(request).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(TlsFaultFlagsTest, UnknownFaultIsAUsageErrorListingTheAcceptedValues) {
  const std::string dir = TempPath("tls_unknown");
  absl::StatusOr<ProcessResult> result = ServerProcess::Run(
      {"--tls_self_signed_dir=" + dir, "--tls_fault=revoked"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 2);
  EXPECT_THAT(result->stderr_text,
              AllOf(HasSubstr("--tls_fault=revoked"),
                    HasSubstr("expired, not_yet_valid, wrong_host, "
                              "untrusted_ca")));
  // Nothing was minted.
  struct stat info;
  EXPECT_NE(stat(dir.c_str(), &info), 0);
}

TEST(TlsFaultFlagsTest, FaultWithoutSelfSignedModeIsAUsageError) {
  const std::string cert = TempPath("cert.pem");
  const std::string key = TempPath("key.pem");
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--tls_fault=expired"},
        std::vector<std::string>{"--tls_fault=expired", "--tls_cert=" + cert,
                                 "--tls_key=" + key}}) {
    absl::StatusOr<ProcessResult> result = ServerProcess::Run(args);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2);
    EXPECT_THAT(result->stderr_text,
                HasSubstr("--tls_fault=expired needs --tls_self_signed_dir"));
  }
}

TEST(TlsFaultFlagsTest, HelpListsTheFlagAndItsValues) {
  absl::StatusOr<ProcessResult> result = ServerProcess::Run({"--help"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_THAT(result->stdout_text,
              AllOf(HasSubstr("--tls_fault"), HasSubstr("not_yet_valid"),
                    HasSubstr("untrusted_ca")));
}

}  // namespace
}  // namespace testing
}  // namespace workflows
