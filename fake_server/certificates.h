#ifndef WORKFLOWS_FAKE_SERVER_CERTIFICATES_H_
#define WORKFLOWS_FAKE_SERVER_CERTIFICATES_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

// Run-time X.509 minting with OpenSSL's library, so that nothing in the repo
// holds key material or certificates that expire. Used by the standalone fake
// server (`--tls_self_signed_dir`) and, through //testing, by TLS tests.
//
// Certificates are validated by OpenSSL against the real wall clock, so the
// validity windows here are real time (absl::Now()), not a SimulatedClock.

namespace workflows::fake {

// A PEM certificate and its PEM (PKCS#8, unencrypted) private key.
struct CertificateAndKey {
  std::string cert_pem;
  std::string key_pem;
};

enum class KeyType {
  kEcP256,   // ECDSA on prime256v1; fast to generate (~1 ms).
  kRsa2048,  // For peers that only speak RSA; slow to generate (~50+ ms).
};

// Which extendedKeyUsage the certificate carries.
enum class CertificateUsage {
  kServer,           // serverAuth
  kClient,           // clientAuth
  kServerAndClient,  // serverAuth, clientAuth
};

struct CertificateAuthorityOptions {
  std::string common_name = "Workflows Fake CA";
  std::optional<absl::Time> not_before;  // Default: now - 1 h (clock skew).
  std::optional<absl::Time> not_after;   // Default: now + 365 days.
  KeyType key_type = KeyType::kEcP256;
};

struct CertificateOptions {
  std::string common_name = "localhost";
  // subjectAltName entries. IP addresses may be IPv4 ("127.0.0.1") or IPv6
  // ("::1"); an unparsable one is an InvalidArgument error.
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  std::optional<absl::Time> not_before;  // Default: now - 1 h (clock skew).
  std::optional<absl::Time> not_after;   // Default: now + 365 days.
  CertificateUsage usage = CertificateUsage::kServer;
  KeyType key_type = KeyType::kEcP256;
};

// A certificate authority whose key lives only in memory. A cheap, copyable
// value: copies share the key, the certificate and the serial counter, so
// every certificate issued through any copy has a distinct serial number.
// Thread-safe.
//
//   absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
//   if (!ca.ok()) return ca.status();
//   CertificateOptions options;
//   options.dns_names = {"localhost"};
//   options.ip_addresses = {"127.0.0.1", "::1"};
//   absl::StatusOr<CertificateAndKey> server = ca->Issue(options);
//   // Serve with server->cert_pem / server->key_pem; clients trust
//   ca->ca_pem().
class CertificateAuthority {
 public:
  static absl::StatusOr<CertificateAuthority> Create(
      const CertificateAuthorityOptions& options = {});

  // The CA certificate, for clients' (or mTLS servers') trust roots.
  const std::string& ca_pem() const { return ca_pem_; }

  // The CA's private key (PEM), e.g. for writing the CA out for inspection.
  const std::string& ca_key_pem() const { return ca_key_pem_; }

  // Mints a fresh key and a certificate for it signed by this CA.
  absl::StatusOr<CertificateAndKey> Issue(
      const CertificateOptions& options) const;

  // Mints a self-signed end-entity certificate (issuer == subject).
  static absl::StatusOr<CertificateAndKey> SelfSigned(
      const CertificateOptions& options);

 private:
  struct State;
  explicit CertificateAuthority(std::shared_ptr<const State> state,
                                std::string ca_pem, std::string ca_key_pem);

  std::shared_ptr<const State> state_;
  std::string ca_pem_;
  std::string ca_key_pem_;
};

// What WriteSelfSignedBundle minted, for serving without reading the key
// back from disk.
struct SelfSignedBundle {
  std::string ca_pem;
  CertificateAndKey server;
};

// A deliberate defect in the server certificate of a self-signed bundle, so
// that clients can be tested against handshakes that must fail
// (`workflows_fake_server --tls_fault=...`). In every case `ca.pem` is the CA
// the client is expected to trust, and the client dials localhost or
// 127.0.0.1 as usual.
enum class TlsFault {
  kNone,         // A valid localhost certificate signed by ca.pem.
  kExpired,      // Signed by ca.pem; its validity ended a day ago.
  kNotYetValid,  // Signed by ca.pem; valid from a day from now.
  kWrongHost,    // Signed by ca.pem for kTlsFaultWrongHost only (no
                 // localhost, no IP addresses).
  kUntrustedCa,  // A localhost certificate signed by another CA: ca.pem did
                 // not sign it.
};

// The only name a kWrongHost certificate carries.
inline constexpr char kTlsFaultWrongHost[] = "wrong.example.com";

// The accepted names, as --tls_fault spells them: "expired",
// "not_yet_valid", "wrong_host", "untrusted_ca" ("none" for kNone).
std::string TlsFaultName(TlsFault fault);

// Parses a TlsFaultName(). Anything else is INVALID_ARGUMENT naming the
// value and listing the accepted ones.
absl::StatusOr<TlsFault> ParseTlsFault(absl::string_view name);

// Mints a CA and a "localhost" server certificate (SANs localhost, 127.0.0.1,
// ::1), writes `ca.pem`, `server.pem` (mode 0644) and `server.key` (mode
// 0600) into `dir`, and returns them. With a `fault` other than kNone the
// server certificate has that defect (see TlsFault), `ca.pem` is still the
// CA clients are meant to trust, and all three files are mode 0600. `dir` is
// created mode 0700 if missing (parents as usual); it must not be a symlink,
// must be owned by this process's user and not be writable by group or others
// (FAILED_PRECONDITION otherwise). Each file is written to a fresh temporary
// file (O_CREAT|O_EXCL|O_NOFOLLOW) and renamed into place, so existing files
// are replaced and a symlink planted at one of the paths is never followed.
// Errors name the path that failed.
//
//   absl::StatusOr<SelfSignedBundle> bundle = WriteSelfSignedBundle(dir);
//   if (!bundle.ok()) return bundle.status();
//   tls.cert_pem = bundle->server.cert_pem;  // serve with these
//   tls.key_pem = bundle->server.key_pem;
absl::StatusOr<SelfSignedBundle> WriteSelfSignedBundle(
    const std::string& dir, TlsFault fault = TlsFault::kNone);

// Number of PEM certificates in `pem`. Zero certificates, or a certificate
// block that does not parse, is an InvalidArgument error saying so.
absl::StatusOr<int> CountCertificates(absl::string_view pem);

// OK iff `pem` holds a parsable PEM private key.
absl::Status ValidatePrivateKey(absl::string_view pem);

// OK iff `pair.cert_pem` holds at least one certificate, `pair.key_pem` a
// private key, and the key belongs to the first certificate.
absl::Status ValidateCertificateAndKey(const CertificateAndKey& pair);

}  // namespace workflows::fake

#endif  // WORKFLOWS_FAKE_SERVER_CERTIFICATES_H_
