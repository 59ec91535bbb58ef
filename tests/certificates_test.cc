// What workflows::Client sees for each server certificate case, over real
// TLS on loopback with certificates minted at run time. gRPC reports every
// handshake failure as UNAVAILABLE; the reason is in the message.

#include <functional>
#include <memory>
#include <string>

#include "client/client.h"
#include "fake_server/fake_workflows_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/matchers.h"
#include "testing/test_certificate_authority.h"

namespace workflows {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::IsOk;
using ::testing::SizeIs;
using testing::StatusIs;
using testing::TestCertificateAuthority;

struct CertificateCase {
  std::string name;
  // The server's certificate.
  std::function<absl::StatusOr<fake::CertificateAndKey>(
      const TestCertificateAuthority&)>
      server_certificate;
  // Expected outcome: OK, or UNAVAILABLE with this reason in the message.
  std::string failure_reason;
};

void PrintTo(const CertificateCase& c, std::ostream* os) { *os << c.name; }

// The fake server listens on 127.0.0.1 only, so the client dials that
// address: "localhost" may resolve to ::1 first and fail with "Connection
// refused" instead of the handshake's reason. The target name override keeps
// hostname verification: the certificate is checked against "localhost".
ClientOptions DialLoopback(int port) {
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = port;
  options.channel_arguments.SetSslTargetNameOverride("localhost");
  return options;
}

class CertificatesTest : public ::testing::TestWithParam<CertificateCase> {};

TEST_P(CertificatesTest, ClientSeesTheExpectedOutcome) {
  absl::StatusOr<TestCertificateAuthority> ca =
      TestCertificateAuthority::Create();
  ASSERT_THAT(ca, IsOk());
  absl::StatusOr<fake::CertificateAndKey> cert =
      GetParam().server_certificate(*ca);
  ASSERT_THAT(cert, IsOk());
  fake::FakeServerOptions server_options;
  server_options.transport = fake::Transport::kTls;
  server_options.tls.cert_pem = cert->cert_pem;
  server_options.tls.key_pem = cert->key_pem;
  auto server = fake::FakeWorkflowsServer::Start(server_options);
  ASSERT_THAT(server, IsOk());

  ClientOptions options = DialLoopback((*server)->port());
  options.certificate = ca->ca_pem();
  options.auth = std::make_shared<StaticTokenAuth>("t0ken");
  Client client(options);

  auto health = client.Health(absl::Seconds(5), {.retry = RetryPolicy::None()});

  if (GetParam().failure_reason.empty()) {
    EXPECT_THAT(health, IsOk());
  } else {
    EXPECT_THAT(health, StatusIs(absl::StatusCode::kUnavailable,
                                 HasSubstr(GetParam().failure_reason)));
  }
}

const char kVerifyFailed[] = "certificate verify failed";

INSTANTIATE_TEST_SUITE_P(
    ServerCertificates, CertificatesTest,
    ::testing::Values(
        CertificateCase{"trusted",
                        [](const TestCertificateAuthority& ca) {
                          return ca.ServerCertificate();
                        },
                        ""},
        CertificateCase{"expired",
                        [](const TestCertificateAuthority& ca) {
                          return ca.ExpiredServerCertificate();
                        },
                        kVerifyFailed},
        CertificateCase{"not_yet_valid",
                        [](const TestCertificateAuthority& ca) {
                          return ca.NotYetValidServerCertificate();
                        },
                        kVerifyFailed},
        // Dialled at 127.0.0.1 but verified as "localhost" (the override),
        // so the name check itself fails, not the connection.
        CertificateCase{"wrong_hostname",
                        [](const TestCertificateAuthority& ca) {
                          return ca.WrongHostServerCertificate();
                        },
                        "Peer name localhost is not in peer certificate"},
        CertificateCase{
            "self_signed",
            [](const TestCertificateAuthority&) {
              return TestCertificateAuthority::SelfSignedServerCertificate();
            },
            kVerifyFailed},
        CertificateCase{"untrusted_ca",
                        [](const TestCertificateAuthority& ca) {
                          return ca.UntrustedCaServerCertificate();
                        },
                        kVerifyFailed}),
    [](const ::testing::TestParamInfo<CertificateCase>& info) {
      return info.param.name;
    });

// The recipe of docs/cookbook.md ("Testing against bad certificates"): a
// test of your own, outside WorkflowsTlsTest, serving a bad certificate from
// TestCertificateAuthority. Under the default retry policy a failed handshake
// is retried like any UNAVAILABLE; a SimulatedClock makes the five backoffs
// free.
TEST(BadCertificateRecipeTest, HandshakeFailuresAreRetriedAsUnavailable) {
  absl::StatusOr<TestCertificateAuthority> ca =
      TestCertificateAuthority::Create();
  ASSERT_THAT(ca, IsOk());
  absl::StatusOr<fake::CertificateAndKey> expired =
      ca->ExpiredServerCertificate();
  ASSERT_THAT(expired, IsOk());
  fake::FakeServerOptions server_options;
  server_options.transport = fake::Transport::kTls;
  server_options.tls.cert_pem = expired->cert_pem;
  server_options.tls.key_pem = expired->key_pem;
  auto server = fake::FakeWorkflowsServer::Start(server_options);
  ASSERT_THAT(server, IsOk());

  ClientOptions options = DialLoopback((*server)->port());
  options.certificate = ca->ca_pem();  // the CA the client trusts
  options.auth = std::make_shared<StaticTokenAuth>("t0ken");
  auto clock = std::make_shared<SimulatedClock>();
  options.clock = clock;  // backoffs are virtual: no real waiting
  Client client(options);

  wf::GetWorkflowRequest request;
  request.set_id("ci@example.com:ndvi");
  EXPECT_THAT(
      client.GetWorkflow(request),
      StatusIs(absl::StatusCode::kUnavailable,
               AllOf(HasSubstr("Maximum retry attempts calling GetWorkflow "
                               "(6 attempts); last error: UNAVAILABLE: "),
                     HasSubstr(kVerifyFailed))));
  EXPECT_THAT(clock->sleeps(), SizeIs(5));  // five backoffs, none waited

  // One attempt only: RetryPolicy::None() (or a shorter CallOptions::budget).
  EXPECT_THAT(
      client.GetWorkflow(request, {.retry = RetryPolicy::None()}),
      StatusIs(absl::StatusCode::kUnavailable, HasSubstr(kVerifyFailed)));
  EXPECT_THAT(clock->sleeps(), SizeIs(5));
  EXPECT_TRUE((*server)->journal().Calls("GetWorkflow").empty());
}

// mTLS: the Workflows client has no client certificate (neither has the
// Python one), so a server that requires one refuses it; a channel with the
// client certificate works.
TEST(MutualTlsTest, MissingClientCertificateFailsAndValidOneWorks) {
  absl::StatusOr<TestCertificateAuthority> ca =
      TestCertificateAuthority::Create();
  ASSERT_THAT(ca, IsOk());
  auto server_cert = ca->ServerCertificate();
  auto client_cert = ca->ClientCertificate("ci-runner");
  ASSERT_THAT(server_cert, IsOk());
  ASSERT_THAT(client_cert, IsOk());
  fake::FakeServerOptions server_options;
  server_options.transport = fake::Transport::kTls;
  server_options.tls.cert_pem = server_cert->cert_pem;
  server_options.tls.key_pem = server_cert->key_pem;
  server_options.tls.client_ca_pem = ca->ca_pem();
  auto server = fake::FakeWorkflowsServer::Start(server_options);
  ASSERT_THAT(server, IsOk());

  ClientOptions without = DialLoopback((*server)->port());
  without.certificate = ca->ca_pem();
  without.auth = std::make_shared<StaticTokenAuth>("t0ken");
  EXPECT_THAT(
      Client(without).Health(absl::Seconds(5), {.retry = RetryPolicy::None()}),
      StatusIs(absl::StatusCode::kUnavailable));

  fake::ChannelOptions channel;
  channel.root_pem = ca->ca_pem();
  channel.target_name_override = "localhost";
  channel.client_cert_pem = client_cert->cert_pem;
  channel.client_key_pem = client_cert->key_pem;
  ClientOptions with;
  with.channel = (*server)->CreateChannel(channel);
  with.auth = std::make_shared<StaticTokenAuth>("t0ken");
  EXPECT_THAT(Client(with).Health(absl::Seconds(5)), IsOk());
  ASSERT_FALSE((*server)->journal().Calls("Check").empty());
  EXPECT_EQ(
      (*server)->journal().Calls("Check").back().identity().x509_common_name(),
      "ci-runner");
}

}  // namespace
}  // namespace workflows
