// The real client end to end over loopback TCP: TLS with a test CA, so that
// the bearer token really crosses the wire, and a plaintext channel, where
// gRPC never sends call credentials.
#include <atomic>
#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "client/test_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/matchers.h"
#include "testing/test_certificate_authority.h"

namespace workflows {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;
using ::workflows::testing::CertificateAndKey;
using ::workflows::testing::RecordedCall;
using ::workflows::testing::ScriptedServer;
using ::workflows::testing::TestCertificateAuthority;

std::vector<std::string> Values(const Metadata& metadata,
                                const std::string& key) {
  std::vector<std::string> out;
  for (const auto& [k, v] : metadata) {
    if (k == key) out.push_back(v);
  }
  return out;
}

// A token that changes on every call, to show it is fetched per call.
class CountingAuth : public Auth {
 public:
  absl::StatusOr<std::string> Token() override {
    return absl::StrCat("token-", ++calls_);
  }

 private:
  std::atomic<int> calls_{0};
};

class ClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestCertificateAuthority> ca =
        TestCertificateAuthority::Create();
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<TestCertificateAuthority>(*std::move(ca));
    auto server_cert = ca_->ServerCertificate();
    ASSERT_TRUE(server_cert.ok()) << server_cert.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs = {{server_cert->key_pem, server_cert->cert_pem}};
    port_ = server_.Start("127.0.0.1:0", grpc::SslServerCredentials(ssl));
    ASSERT_GT(port_, 0);
  }

  ClientOptions SecureOptions() {
    ClientOptions options;
    // The server listens on 127.0.0.1 only ("localhost" may resolve to ::1
    // first); the override still verifies the certificate's "localhost" SAN.
    options.host = "127.0.0.1";
    options.port = port_;
    options.channel_arguments.SetSslTargetNameOverride("localhost");
    options.certificate = ca_->ca_pem();
    options.clock = std::make_shared<SimulatedClock>();
    return options;
  }

  std::unique_ptr<TestCertificateAuthority> ca_;
  ScriptedServer server_;
  int port_ = 0;
};

TEST_F(ClientTlsTest, BearerTokenCrossesTheWire) {
  ClientOptions options = SecureOptions();
  options.auth = std::make_shared<StaticTokenAuth>("tls-token");
  Client client(options);
  wf::GetJobRequest request;
  request.set_id("j");
  CallResult<wf::Job> result = client.GetJob(request);
  ASSERT_TRUE(result.ok()) << result.status();
  std::vector<RecordedCall> calls = server_.calls("GetJob");
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_THAT(Values(calls[0].metadata, "authorization"),
              ElementsAre("Bearer tls-token"));
  EXPECT_THAT(Values(calls[0].metadata, "x-wf-channel"), ElementsAre("v0-19"));
  std::vector<std::string> agents = Values(calls[0].metadata, "user-agent");
  ASSERT_THAT(agents, SizeIs(1));
  EXPECT_TRUE(absl::StartsWith(agents[0], "workflows-cpp/0.1.0")) << agents[0];
}

TEST_F(ClientTlsTest, TokenIsFetchedOnEveryCall) {
  ClientOptions options = SecureOptions();
  options.auth = std::make_shared<CountingAuth>();
  Client client(options);
  ASSERT_THAT(client.GetJob(wf::GetJobRequest()), ::workflows::testing::IsOk());
  ASSERT_THAT(client.Health(), ::workflows::testing::IsOk());
  std::vector<RecordedCall> calls = server_.calls();
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_THAT(Values(calls[0].metadata, "authorization"),
              ElementsAre("Bearer token-1"));
  EXPECT_THAT(Values(calls[1].metadata, "authorization"),
              ElementsAre("Bearer token-2"));
}

TEST_F(ClientTlsTest, MissingTokenFailsTheCallWithoutReachingTheServer) {
  constexpr char kVar[] = "WORKFLOWS_TLS_TEST_NO_TOKEN";
  unsetenv(kVar);
  ClientOptions options = SecureOptions();
  options.auth = std::make_shared<EnvironmentAuth>(kVar);
  Client client(options);
  absl::Status status = client.GetJob(wf::GetJobRequest()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(kVar));
  EXPECT_EQ(server_.count("GetJob"), 0);
}

TEST_F(ClientTlsTest, CaBundleFromTheEnvironment) {
  std::string path = absl::StrCat(std::getenv("TEST_TMPDIR"), "/ca.pem");
  std::ofstream(path) << ca_->ca_pem();
  setenv("GRPC_CA_BUNDLE", path.c_str(), 1);
  ClientOptions options = SecureOptions();
  options.certificate.clear();
  options.auth = std::make_shared<StaticTokenAuth>("t");
  Client client(options);
  EXPECT_EQ(*client.certificate(), ca_->ca_pem());
  EXPECT_THAT(client.GetJob(wf::GetJobRequest()), ::workflows::testing::IsOk());
  unsetenv("GRPC_CA_BUNDLE");
}

TEST_F(ClientTlsTest, UntrustedServerIsUnavailable) {
  ClientOptions options = SecureOptions();
  options.certificate = ca_->untrusted_ca_pem();
  options.auth = std::make_shared<StaticTokenAuth>("t");
  Client client(options);
  CallOptions call;
  call.retry = RetryPolicy::None();
  EXPECT_EQ(client.GetJob(wf::GetJobRequest(), call).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.count(""), 0);
}

// Health() against servers whose certificate the client must refuse: the
// handshake fails on every attempt, the channel never connects, and running
// out of the budget is the handshake's UNAVAILABLE (with the budget in the
// message), not DEADLINE_EXCEEDED.
TEST_F(ClientTlsTest, HealthOverAFailedHandshakeIsUnavailableWithItsBudget) {
  constexpr char kVerifyFailed[] = "certificate verify failed";
  struct Case {
    std::string name;
    absl::StatusOr<CertificateAndKey> cert;
    std::string handshake_error;
  };
  std::vector<Case> cases;
  cases.push_back({"expired", ca_->ExpiredServerCertificate(), kVerifyFailed});
  cases.push_back(
      {"not yet valid", ca_->NotYetValidServerCertificate(), kVerifyFailed});
  cases.push_back({"wrong host", ca_->WrongHostServerCertificate(),
                   "Peer name localhost is not in peer certificate"});
  cases.push_back(
      {"untrusted CA", ca_->UntrustedCaServerCertificate(), kVerifyFailed});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ASSERT_TRUE(c.cert.ok()) << c.cert.status();
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs = {{c.cert->key_pem, c.cert->cert_pem}};
    ScriptedServer bad_server;
    const int port =
        bad_server.Start("127.0.0.1:0", grpc::SslServerCredentials(ssl));
    ASSERT_GT(port, 0);
    ClientOptions options = SecureOptions();
    options.port = port;
    options.auth = std::make_shared<StaticTokenAuth>("t");
    auto clock = std::make_shared<SimulatedClock>();
    options.clock = clock;
    Client client(options);
    const absl::Time start = clock->Now();
    absl::Status status = client.Health(absl::Seconds(5)).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
    EXPECT_THAT(std::string(status.message()),
                AllOf(HasSubstr("Check could not connect within its 5s budget"),
                      HasSubstr("channel in TRANSIENT_FAILURE"),
                      HasSubstr("last error: UNAVAILABLE: "),
                      HasSubstr(c.handshake_error)))
        << status;
    // Every attempt is still there, each the handshake's UNAVAILABLE.
    std::vector<absl::Status> attempts = RetryAttempts(status);
    EXPECT_THAT(attempts, Not(IsEmpty()));
    for (const absl::Status& attempt : attempts) {
      EXPECT_EQ(attempt.code(), absl::StatusCode::kUnavailable) << attempt;
    }
    EXPECT_LE(clock->Now() - start, absl::Seconds(5));
    EXPECT_EQ(bad_server.count(""), 0);
  }
}

// A server that answers UNAVAILABLE itself over a connected channel still
// runs the budget out as DEADLINE_EXCEEDED: only a channel that never
// connected turns it into UNAVAILABLE.
TEST_F(ClientTlsTest, HealthOfAConnectedServerAnsweringUnavailableTimesOut) {
  for (int i = 0; i < 10; ++i) {
    server_.Enqueue("Check",
                    {.status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                            "backend restarting")});
  }
  ClientOptions options = SecureOptions();
  options.auth = std::make_shared<StaticTokenAuth>("t");
  Client client(options);
  absl::Status status = client.Health(absl::Seconds(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr("1s budget"),
                    HasSubstr("UNAVAILABLE: backend restarting")));
  EXPECT_GE(server_.count("Check"), 1);
}

TEST(ClientInsecureTest, NoTokenOnPlaintextUnlessAsked) {
  ScriptedServer server;
  int port = server.Start("127.0.0.1:0");
  ASSERT_GT(port, 0);
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  options.use_insecure_channel = true;
  options.auth = std::make_shared<StaticTokenAuth>("plain");
  {
    Client client(options);
    ASSERT_THAT(client.GetJob(wf::GetJobRequest()),
                ::workflows::testing::IsOk());
  }
  options.send_token_on_insecure_channel = true;
  {
    Client client(options);
    ASSERT_THAT(client.GetJob(wf::GetJobRequest()),
                ::workflows::testing::IsOk());
  }
  std::vector<RecordedCall> calls = server.calls("GetJob");
  ASSERT_THAT(calls, SizeIs(2));
  EXPECT_THAT(Values(calls[0].metadata, "authorization"), IsEmpty());
  EXPECT_THAT(Values(calls[0].metadata, "x-wf-channel"), ElementsAre("v0-19"));
  EXPECT_THAT(Values(calls[1].metadata, "authorization"),
              ElementsAre("Bearer plain"));
}

}  // namespace
}  // namespace workflows
