#include "testing/test_certificate_authority.h"

#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace workflows::testing {
namespace {

using ::workflows::fake::CertificateAuthority;
using ::workflows::fake::CertificateAuthorityOptions;
using ::workflows::fake::CertificateOptions;
using ::workflows::fake::CertificateUsage;

CertificateOptions Localhost() {
  CertificateOptions options;
  options.common_name = "localhost";
  options.dns_names = {"localhost"};
  options.ip_addresses = {"127.0.0.1", "::1"};
  options.usage = CertificateUsage::kServer;
  return options;
}

CertificateOptions Client(const std::string& common_name) {
  CertificateOptions options;
  options.common_name = common_name;
  options.usage = CertificateUsage::kClient;
  return options;
}

absl::StatusOr<CertificateAuthority> MakeCa(const std::string& name) {
  CertificateAuthorityOptions options;
  options.common_name = name;
  // Back-dated beyond the expired leaf's window, so that a verifier that
  // checks the whole chain blames the leaf, not the CA.
  options.not_before = absl::Now() - absl::Hours(24 * 7);
  options.not_after = absl::Now() + absl::Hours(24 * 30);
  return CertificateAuthority::Create(options);
}

}  // namespace

absl::StatusOr<TestCertificateAuthority> TestCertificateAuthority::Create() {
  absl::StatusOr<CertificateAuthority> trusted = MakeCa("Workflows Test CA");
  if (!trusted.ok()) return trusted.status();
  absl::StatusOr<CertificateAuthority> untrusted =
      MakeCa("Workflows Untrusted Test CA");
  if (!untrusted.ok()) return untrusted.status();
  return TestCertificateAuthority(*std::move(trusted), *std::move(untrusted));
}

absl::StatusOr<CertificateAndKey> TestCertificateAuthority::ServerCertificate(
    std::vector<std::string> dns_names,
    std::vector<std::string> ip_addresses) const {
  CertificateOptions options = Localhost();
  if (!dns_names.empty()) options.common_name = dns_names.front();
  options.dns_names = std::move(dns_names);
  options.ip_addresses = std::move(ip_addresses);
  return trusted_.Issue(options);
}

absl::StatusOr<CertificateAndKey>
TestCertificateAuthority::ExpiredServerCertificate() const {
  CertificateOptions options = Localhost();
  options.not_before = absl::Now() - absl::Hours(48);
  options.not_after = absl::Now() - absl::Hours(24);
  return trusted_.Issue(options);
}

absl::StatusOr<CertificateAndKey>
TestCertificateAuthority::NotYetValidServerCertificate() const {
  CertificateOptions options = Localhost();
  options.not_before = absl::Now() + absl::Hours(24);
  options.not_after = absl::Now() + absl::Hours(48);
  return trusted_.Issue(options);
}

absl::StatusOr<CertificateAndKey>
TestCertificateAuthority::WrongHostServerCertificate() const {
  CertificateOptions options = Localhost();
  options.common_name = kWrongHost;
  options.dns_names = {kWrongHost};
  options.ip_addresses.clear();
  return trusted_.Issue(options);
}

absl::StatusOr<CertificateAndKey>
TestCertificateAuthority::SelfSignedServerCertificate() {
  return CertificateAuthority::SelfSigned(Localhost());
}

absl::StatusOr<CertificateAndKey>
TestCertificateAuthority::UntrustedCaServerCertificate() const {
  return untrusted_.Issue(Localhost());
}

absl::StatusOr<CertificateAndKey> TestCertificateAuthority::ClientCertificate(
    const std::string& common_name) const {
  return trusted_.Issue(Client(common_name));
}

absl::StatusOr<CertificateAndKey>
TestCertificateAuthority::UntrustedClientCertificate() const {
  return untrusted_.Issue(Client("untrusted-client"));
}

}  // namespace workflows::testing
