#ifndef WORKFLOWS_TESTING_TEST_CERTIFICATE_AUTHORITY_H_
#define WORKFLOWS_TESTING_TEST_CERTIFICATE_AUTHORITY_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "fake_server/certificates.h"

namespace workflows::testing {

// The PEM certificate and key pair every call below returns:
// fake::CertificateAndKey from //fake_server:certificates (public; depend on
// it to use CertificateAndKey, fake::CertificateAuthority or
// fake::CertificateOptions directly).
using ::workflows::fake::CertificateAndKey;

// TestCertificateAuthority mints, at run time, every certificate a TLS test
// needs: the good case and each way a handshake can go wrong. Nothing is read
// from files, so nothing in the repo expires. It holds two CAs: the trusted
// one (whose certificate is `ca_pem()`, for clients' roots and mTLS servers'
// client roots) and an untrusted one, so "signed by somebody else" is one call.
//
// Validity is checked by OpenSSL against the real wall clock, so expired and
// not-yet-valid certificates are a day off real time, not SimulatedClock time.
//
//   absl::StatusOr<TestCertificateAuthority> ca =
//       TestCertificateAuthority::Create();
//   ASSERT_TRUE(ca.ok()) << ca.status();
//   absl::StatusOr<CertificateAndKey> server = ca->ServerCertificate();
//   grpc::SslServerCredentialsOptions server_options;
//   server_options.pem_key_cert_pairs = {{server->key_pem, server->cert_pem}};
//   grpc::SslCredentialsOptions client_options;
//   client_options.pem_root_certs = ca->ca_pem();
//   // Dial "localhost:<port>": the server certificate names localhost,
//   // 127.0.0.1 and ::1.
//
// Each call mints a fresh key pair (EC P-256, about a millisecond). Copies
// share the CAs. Thread-safe.
class TestCertificateAuthority {
 public:
  static constexpr char kWrongHost[] = "wrong.example.com";

  static absl::StatusOr<TestCertificateAuthority> Create();

  // The trusted CA certificate.
  const std::string& ca_pem() const { return trusted_.ca_pem(); }
  // The CA behind UntrustedCaServerCertificate/UntrustedClientCertificate;
  // deliberately not part of ca_pem().
  const std::string& untrusted_ca_pem() const { return untrusted_.ca_pem(); }

  // The underlying CA, for certificates the conveniences below don't cover.
  const fake::CertificateAuthority& authority() const { return trusted_; }

  // A valid server certificate (serverAuth) for the given SANs.
  absl::StatusOr<CertificateAndKey> ServerCertificate(
      std::vector<std::string> dns_names = {"localhost"},
      std::vector<std::string> ip_addresses = {"127.0.0.1", "::1"}) const;

  // A localhost server certificate whose validity ended a day ago.
  absl::StatusOr<CertificateAndKey> ExpiredServerCertificate() const;

  // A localhost server certificate that becomes valid in a day.
  absl::StatusOr<CertificateAndKey> NotYetValidServerCertificate() const;

  // A trusted server certificate for kWrongHost only (no localhost, no IPs).
  absl::StatusOr<CertificateAndKey> WrongHostServerCertificate() const;

  // A self-signed localhost server certificate, trusted by nobody.
  static absl::StatusOr<CertificateAndKey> SelfSignedServerCertificate();

  // A localhost server certificate issued by the untrusted CA.
  absl::StatusOr<CertificateAndKey> UntrustedCaServerCertificate() const;

  // A valid client certificate (clientAuth) with the given subject CN.
  absl::StatusOr<CertificateAndKey> ClientCertificate(
      const std::string& common_name = "test-client") const;

  // A client certificate issued by the untrusted CA.
  absl::StatusOr<CertificateAndKey> UntrustedClientCertificate() const;

 private:
  TestCertificateAuthority(fake::CertificateAuthority trusted,
                           fake::CertificateAuthority untrusted)
      : trusted_(std::move(trusted)), untrusted_(std::move(untrusted)) {}

  fake::CertificateAuthority trusted_;
  fake::CertificateAuthority untrusted_;
};

}  // namespace workflows::testing

#endif  // WORKFLOWS_TESTING_TEST_CERTIFICATE_AUTHORITY_H_
