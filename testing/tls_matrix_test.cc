// What a gRPC client sees for each certificate situation, end to end over
// real TLS on loopback: the status code, and the handshake reason where
// gRPC 1.51 puts one in the error message. The table printed at the end of
// the run is the documentation; each row is also asserted.

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "testing/test_certificate_authority.h"

namespace workflows::testing {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

class ServingHealth : public Health::Service {
 public:
  grpc::Status Check(grpc::ServerContext*, const HealthCheckRequest*,
                     HealthCheckResponse* response) override {
    response->set_status(HealthCheckResponse::SERVING);
    return grpc::Status::OK;
  }
};

enum class ClientCert { kNone, kTrusted, kUntrusted };
enum class ClientRoots { kTestCa, kServerCertificateItself };

// How the client dials the server (which listens on 127.0.0.1 only).
enum class Target {
  // "localhost:<port>": the everyday path, name resolution included.
  kLocalhost,
  // "ipv4:127.0.0.1:<port>" with GRPC_SSL_TARGET_NAME_OVERRIDE_ARG=localhost:
  // the certificate is still checked against "localhost", but there is
  // exactly one address. Failure cases use it because gRPC reports only the
  // last address's error, and a resolver that also returns ::1 (where nothing
  // listens) could make that "Connection refused" instead of the handshake
  // reason.
  kIpv4CheckedAsLocalhost,
  // "ipv4:127.0.0.1:<port>", no override: checked against IP SAN 127.0.0.1.
  kIpv4Literal,
};

using MintServerCertificate = std::function<absl::StatusOr<CertificateAndKey>(
    const TestCertificateAuthority&)>;

struct TlsCase {
  TlsCase(std::string name, MintServerCertificate mint)
      : name(std::move(name)), server_certificate(std::move(mint)) {}

  TlsCase& RequireClientCertificate(ClientCert sent) {
    require_client_certificate = true;
    client_certificate = sent;
    return *this;
  }
  TlsCase& TrustOnly(ClientRoots roots) {
    client_roots = roots;
    return *this;
  }
  TlsCase& Dial(Target how) {
    target = how;
    return *this;
  }
  TlsCase& Expect(grpc::StatusCode code, std::string reason = "") {
    expected_code = code;
    expected_reason = std::move(reason);
    return *this;
  }

  std::string name;
  MintServerCertificate server_certificate;
  bool require_client_certificate = false;
  ClientCert client_certificate = ClientCert::kNone;
  ClientRoots client_roots = ClientRoots::kTestCa;
  Target target = Target::kIpv4CheckedAsLocalhost;
  grpc::StatusCode expected_code = grpc::StatusCode::OK;
  // Substring of the client's error message; empty means none is asserted.
  std::string expected_reason;
};

void PrintTo(const TlsCase& c, std::ostream* os) { *os << c.name; }

std::string CodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return absl::StrCat("code ", static_cast<int>(code));
  }
}

struct Row {
  std::string name;
  std::string code;
  std::string message;
};

absl::Mutex table_mutex;
std::vector<Row>& Table() {
  static auto* table = new std::vector<Row>();
  return *table;
}

class TlsMatrixTest : public ::testing::TestWithParam<TlsCase> {
 protected:
  static void TearDownTestSuite() {
    absl::MutexLock lock(&table_mutex);
    std::printf("\n%-34s | %-11s | %s\n", "case", "code", "client message");
    std::printf("%s\n", std::string(100, '-').c_str());
    for (const Row& row : Table()) {
      std::printf("%-34s | %-11s | %s\n", row.name.c_str(), row.code.c_str(),
                  row.message.c_str());
    }
    std::fflush(stdout);
  }
};

TEST_P(TlsMatrixTest, ClientSeesExpectedStatus) {
  const TlsCase& c = GetParam();
  absl::StatusOr<TestCertificateAuthority> ca =
      TestCertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<CertificateAndKey> server_cert = c.server_certificate(*ca);
  ASSERT_TRUE(server_cert.ok()) << server_cert.status();

  grpc::SslServerCredentialsOptions server_options(
      c.require_client_certificate
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  server_options.pem_key_cert_pairs = {
      {server_cert->key_pem, server_cert->cert_pem}};
  if (c.require_client_certificate)
    server_options.pem_root_certs = ca->ca_pem();

  ServingHealth service;
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0",
                           grpc::SslServerCredentials(server_options), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_NE(port, 0);

  grpc::SslCredentialsOptions client_options;
  client_options.pem_root_certs = c.client_roots == ClientRoots::kTestCa
                                      ? ca->ca_pem()
                                      : server_cert->cert_pem;
  if (c.client_certificate != ClientCert::kNone) {
    absl::StatusOr<CertificateAndKey> client_cert =
        c.client_certificate == ClientCert::kTrusted
            ? ca->ClientCertificate()
            : ca->UntrustedClientCertificate();
    ASSERT_TRUE(client_cert.ok()) << client_cert.status();
    client_options.pem_cert_chain = client_cert->cert_pem;
    client_options.pem_private_key = client_cert->key_pem;
  }
  grpc::ChannelArguments args;
  std::string target = absl::StrCat("ipv4:127.0.0.1:", port);
  if (c.target == Target::kLocalhost) {
    target = absl::StrCat("localhost:", port);
  } else if (c.target == Target::kIpv4CheckedAsLocalhost) {
    args.SetSslTargetNameOverride("localhost");
  }
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(
      target, grpc::SslCredentials(client_options), args);
  std::unique_ptr<Health::Stub> stub = Health::NewStub(channel);

  grpc::ClientContext context;
  // Handshake failures end in milliseconds; the deadline only bounds a bug.
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(2));
  context.set_wait_for_ready(false);
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, HealthCheckRequest(), &response);
  server->Shutdown();

  {
    absl::MutexLock lock(&table_mutex);
    Table().push_back(
        {c.name, CodeName(status.error_code()), status.error_message()});
  }
  RecordProperty("code", CodeName(status.error_code()));
  RecordProperty("message", status.error_message());

  EXPECT_EQ(status.error_code(), c.expected_code)
      << CodeName(status.error_code()) << ": " << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(c.expected_reason));
  if (c.expected_code == grpc::StatusCode::OK) {
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  }
}

// What gRPC 1.51 (with OpenSSL 3.0) tells the client, found by experiment:
// - Every handshake failure is UNAVAILABLE ("failed to connect to all
//   addresses; last error: UNKNOWN: ipv4:127.0.0.1:<port>: ...").
// - A certificate the client cannot verify (expired, not yet valid,
//   self-signed, unknown CA) reads "Ssl handshake failed: SSL_ERROR_SSL:
//   error:0A000086:SSL routines::certificate verify failed". The X.509 reason
//   (expired vs. unknown issuer) is not exposed to the client at all.
// - A trusted certificate for another name reads "Peer name <name> is not in
//   peer certificate" (gRPC's own check, after OpenSSL's).
// - Under TLS 1.3 the client finishes its side of the handshake before the
//   server checks the client certificate, so a rejected or missing client
//   certificate reaches the client only as "Socket closed"; the reason
//   ("peer did not return a certificate", "certificate verify failed") is in
//   the server's log only.
constexpr char kVerifyFailed[] =
    "Ssl handshake failed: SSL_ERROR_SSL: error:0A000086:SSL "
    "routines::certificate verify failed";
constexpr char kSocketClosed[] = "Socket closed";

std::vector<TlsCase> Cases() {
  using Code = grpc::StatusCode;
  using CA = TestCertificateAuthority;
  auto trusted = [](const CA& ca) { return ca.ServerCertificate(); };
  auto dns_only = [](const CA& ca) {
    return ca.ServerCertificate({"localhost"}, {});
  };
  auto expired = [](const CA& ca) { return ca.ExpiredServerCertificate(); };
  auto not_yet_valid = [](const CA& ca) {
    return ca.NotYetValidServerCertificate();
  };
  auto wrong_host = [](const CA& ca) {
    return ca.WrongHostServerCertificate();
  };
  auto self_signed = [](const CA&) {
    return CA::SelfSignedServerCertificate();
  };
  auto untrusted_ca = [](const CA& ca) {
    return ca.UntrustedCaServerCertificate();
  };

  return {
      TlsCase("trusted", trusted).Dial(Target::kLocalhost).Expect(Code::OK),
      TlsCase("trusted_ip_san", trusted)
          .Dial(Target::kIpv4Literal)
          .Expect(Code::OK),
      TlsCase("ip_target_without_ip_san", dns_only)
          .Dial(Target::kIpv4Literal)
          .Expect(Code::UNAVAILABLE,
                  "Peer name 127.0.0.1 is not in peer certificate"),
      TlsCase("expired", expired).Expect(Code::UNAVAILABLE, kVerifyFailed),
      TlsCase("not_yet_valid", not_yet_valid)
          .Expect(Code::UNAVAILABLE, kVerifyFailed),
      TlsCase("wrong_hostname", wrong_host)
          .Expect(Code::UNAVAILABLE,
                  "Peer name localhost is not in peer certificate"),
      TlsCase("self_signed", self_signed)
          .Expect(Code::UNAVAILABLE, kVerifyFailed),
      TlsCase("self_signed_pinned_as_root", self_signed)
          .TrustOnly(ClientRoots::kServerCertificateItself)
          .Expect(Code::OK),
      TlsCase("untrusted_ca", untrusted_ca)
          .Expect(Code::UNAVAILABLE, kVerifyFailed),
      TlsCase("mtls_valid_client_cert", trusted)
          .RequireClientCertificate(ClientCert::kTrusted)
          .Expect(Code::OK),
      TlsCase("mtls_no_client_cert", trusted)
          .RequireClientCertificate(ClientCert::kNone)
          .Expect(Code::UNAVAILABLE, kSocketClosed),
      TlsCase("mtls_untrusted_client_cert", trusted)
          .RequireClientCertificate(ClientCert::kUntrusted)
          .Expect(Code::UNAVAILABLE, kSocketClosed),
  };
}

INSTANTIATE_TEST_SUITE_P(Certificates, TlsMatrixTest,
                         ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<TlsCase>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace workflows::testing
