#include "fake_server/certificates.h"

#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fake_server/private_file.h"

namespace workflows::fake {
namespace {

template <typename T, void (*kFree)(T*)>
struct OpenSslDeleter {
  void operator()(T* p) const { kFree(p); }
};
using BioPtr = std::unique_ptr<BIO, OpenSslDeleter<BIO, BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, OpenSslDeleter<BIGNUM, BN_free>>;
using KeyPtr =
    std::unique_ptr<EVP_PKEY, OpenSslDeleter<EVP_PKEY, EVP_PKEY_free>>;
using NamePtr =
    std::unique_ptr<X509_NAME, OpenSslDeleter<X509_NAME, X509_NAME_free>>;
using X509Ptr = std::unique_ptr<X509, OpenSslDeleter<X509, X509_free>>;
using ExtensionPtr =
    std::unique_ptr<X509_EXTENSION,
                    OpenSslDeleter<X509_EXTENSION, X509_EXTENSION_free>>;
using GeneralNamesPtr =
    std::unique_ptr<GENERAL_NAMES,
                    OpenSslDeleter<GENERAL_NAMES, GENERAL_NAMES_free>>;
using OctetStringPtr =
    std::unique_ptr<ASN1_OCTET_STRING,
                    OpenSslDeleter<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;

constexpr absl::Duration kDefaultBackdate = absl::Hours(1);
constexpr absl::Duration kDefaultLifetime = absl::Hours(24 * 365);

// Drains this thread's OpenSSL error queue into a Status, so the caller sees
// the library's own reason (e.g. "error:0480006C:PEM routines::no start
// line") rather than a bare "failed".
absl::Status OpenSslError(absl::StatusCode code, absl::string_view what) {
  std::vector<std::string> reasons;
  while (unsigned long error = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(error, buffer, sizeof(buffer));
    reasons.emplace_back(buffer);
  }
  if (reasons.empty()) reasons.emplace_back("no OpenSSL error reported");
  return absl::Status(code,
                      absl::StrCat(what, ": ", absl::StrJoin(reasons, "; ")));
}

absl::Status Internal(absl::string_view what) {
  return OpenSslError(absl::StatusCode::kInternal, what);
}

// Never prompts on a terminal for an encrypted key's passphrase (OpenSSL's
// default when no callback is given); encrypted keys simply fail to load.
int NoPassphrase(char*, int, int, void*) { return -1; }

absl::StatusOr<BioPtr> ReadOnlyBio(absl::string_view pem) {
  if (pem.size() > static_cast<size_t>(INT_MAX)) {
    return absl::InvalidArgumentError("PEM data is larger than 2 GiB");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return Internal("BIO_new_mem_buf failed");
  return bio;
}

// True iff the last OpenSSL error says "no (more) PEM blocks of this type",
// which is how PEM readers report a clean end of input.
bool IsPemNoStartLine() {
  unsigned long error = ERR_peek_last_error();
  return ERR_GET_LIB(error) == ERR_LIB_PEM &&
         ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
}

absl::StatusOr<KeyPtr> GenerateKey(KeyType type) {
  KeyPtr key(type == KeyType::kRsa2048 ? EVP_RSA_gen(2048)
                                       : EVP_EC_gen("P-256"));
  if (key == nullptr) return Internal("key generation failed");
  return key;
}

absl::StatusOr<std::string> BioContents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  if (size < 0 || data == nullptr) return Internal("BIO_get_mem_data failed");
  return std::string(data, static_cast<size_t>(size));
}

absl::StatusOr<std::string> CertificateToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return Internal("PEM_write_bio_X509 failed");
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr,
                               nullptr) != 1) {
    return Internal("PEM_write_bio_PrivateKey failed");
  }
  return BioContents(bio.get());
}

// 128-bit serial: 64 random bits (so two CAs rarely collide) followed by a
// per-CA counter (so one CA never repeats). The top bit is cleared and the
// next one set, keeping the INTEGER positive and of constant length.
absl::Status SetSerial(X509* cert, uint64_t counter) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, 8) != 1) return Internal("RAND_bytes failed");
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  for (int i = 0; i < 8; ++i) {
    bytes[15 - i] = static_cast<unsigned char>(counter >> (8 * i));
  }
  BignumPtr bn(BN_bin2bn(bytes, sizeof(bytes), nullptr));
  if (bn == nullptr ||
      BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return Internal("setting the serial number failed");
  }
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid,
                          const char* value) {
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Internal(absl::StrCat("adding extension ", OBJ_nid2sn(nid), "=",
                                 value, " failed"));
  }
  return absl::OkStatus();
}

absl::Status AddSubjectAltNames(X509* cert, const CertificateOptions& options) {
  if (options.dns_names.empty() && options.ip_addresses.empty()) {
    return absl::OkStatus();
  }
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (names == nullptr) return Internal("sk_GENERAL_NAME_new_null failed");
  for (const std::string& dns : options.dns_names) {
    if (dns.empty() || dns.find_first_of(" ,\t\r\n") != std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid DNS name for subjectAltName: '", dns, "'"));
    }
    GENERAL_NAME* name =
        a2i_GENERAL_NAME(nullptr, nullptr, nullptr, GEN_DNS, dns.c_str(), 0);
    if (name == nullptr || sk_GENERAL_NAME_push(names.get(), name) == 0) {
      GENERAL_NAME_free(name);
      return Internal(absl::StrCat("adding DNS name '", dns, "' failed"));
    }
  }
  for (const std::string& ip : options.ip_addresses) {
    OctetStringPtr parsed(a2i_IPADDRESS(ip.c_str()));
    if (parsed == nullptr) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("invalid IP address for subjectAltName: '", ip,
                       "' (expected IPv4 like 127.0.0.1 or IPv6 like ::1)"));
    }
    GENERAL_NAME* name = GENERAL_NAME_new();
    if (name == nullptr) return Internal("GENERAL_NAME_new failed");
    GENERAL_NAME_set0_value(name, GEN_IPADD, parsed.release());
    if (sk_GENERAL_NAME_push(names.get(), name) == 0) {
      GENERAL_NAME_free(name);
      return Internal("sk_GENERAL_NAME_push failed");
    }
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0,
                        X509V3_ADD_DEFAULT) != 1) {
    return Internal("adding subjectAltName failed");
  }
  return absl::OkStatus();
}

struct Validity {
  absl::Time not_before;
  absl::Time not_after;
};

absl::StatusOr<Validity> ResolveValidity(std::optional<absl::Time> not_before,
                                         std::optional<absl::Time> not_after) {
  absl::Time now = absl::Now();
  Validity validity{not_before.value_or(now - kDefaultBackdate),
                    not_after.value_or(now + kDefaultLifetime)};
  if (validity.not_after <= validity.not_before) {
    return absl::InvalidArgumentError(absl::StrCat(
        "certificate not_after (", absl::FormatTime(validity.not_after),
        ") must be later than not_before (",
        absl::FormatTime(validity.not_before), ")"));
  }
  return validity;
}

// What makes a certificate a CA, a server, a client or both.
struct Profile {
  bool is_ca = false;
  CertificateUsage usage = CertificateUsage::kServer;
  KeyType key_type = KeyType::kEcP256;
};

// Builds and signs a certificate for `subject_key`. `issuer` and `issuer_key`
// are null for a self-signed certificate.
absl::StatusOr<X509Ptr> BuildCertificate(const std::string& common_name,
                                         const Validity& validity,
                                         const Profile& profile,
                                         uint64_t serial, EVP_PKEY* subject_key,
                                         X509* issuer, EVP_PKEY* issuer_key,
                                         const CertificateOptions* sans) {
  if (common_name.empty()) {
    return absl::InvalidArgumentError("certificate common_name is empty");
  }
  X509Ptr cert(X509_new());
  if (cert == nullptr) return Internal("X509_new failed");
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return Internal("X509_set_version failed");
  }
  if (absl::Status s = SetSerial(cert.get(), serial); !s.ok()) return s;
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                    absl::ToTimeT(validity.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                    absl::ToTimeT(validity.not_after)) == nullptr) {
    return Internal("setting the validity window failed");
  }
  NamePtr subject(X509_NAME_new());
  if (subject == nullptr ||
      X509_NAME_add_entry_by_txt(
          subject.get(), "CN", MBSTRING_UTF8,
          reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
          0) != 1) {
    return OpenSslError(
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("invalid certificate common_name '", common_name, "'"));
  }
  if (X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(cert.get(), issuer != nullptr
                                           ? X509_get_subject_name(issuer)
                                           : subject.get()) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return Internal("setting subject, issuer or public key failed");
  }

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(),
                 nullptr, nullptr, 0);
  absl::Status s =
      AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  // A self-signed certificate needs no authorityKeyIdentifier: it is its own
  // trust anchor.
  if (s.ok() && issuer != nullptr) {
    s = AddExtension(cert.get(), &ctx, NID_authority_key_identifier,
                     "keyid:always");
  }
  if (!s.ok()) return s;
  if (profile.is_ca) {
    s = AddExtension(cert.get(), &ctx, NID_basic_constraints,
                     "critical,CA:TRUE");
    if (s.ok()) {
      s = AddExtension(cert.get(), &ctx, NID_key_usage,
                       "critical,keyCertSign,cRLSign");
    }
    if (!s.ok()) return s;
  } else {
    s = AddExtension(cert.get(), &ctx, NID_basic_constraints,
                     "critical,CA:FALSE");
    // RSA key exchange (TLS 1.2 without ECDHE) needs keyEncipherment. A
    // self-signed certificate also needs keyCertSign, or OpenSSL will not
    // accept it as its own issuer when a peer pins it as a trust root.
    std::string key_usage = "critical,digitalSignature";
    if (profile.key_type == KeyType::kRsa2048) {
      absl::StrAppend(&key_usage, ",keyEncipherment");
    }
    if (issuer == nullptr) absl::StrAppend(&key_usage, ",keyCertSign");
    if (s.ok()) {
      s = AddExtension(cert.get(), &ctx, NID_key_usage, key_usage.c_str());
    }
    if (s.ok()) {
      const char* eku = "serverAuth";
      if (profile.usage == CertificateUsage::kClient) eku = "clientAuth";
      if (profile.usage == CertificateUsage::kServerAndClient) {
        eku = "serverAuth,clientAuth";
      }
      s = AddExtension(cert.get(), &ctx, NID_ext_key_usage, eku);
    }
    if (s.ok() && sans != nullptr) s = AddSubjectAltNames(cert.get(), *sans);
    if (!s.ok()) return s;
  }

  EVP_PKEY* signer = issuer_key != nullptr ? issuer_key : subject_key;
  if (X509_sign(cert.get(), signer, EVP_sha256()) <= 0) {
    return Internal("X509_sign failed");
  }
  return cert;
}

absl::StatusOr<CertificateAndKey> ToPemPair(X509* cert, EVP_PKEY* key) {
  absl::StatusOr<std::string> cert_pem = CertificateToPem(cert);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = KeyToPem(key);
  if (!key_pem.ok()) return key_pem.status();
  return CertificateAndKey{*std::move(cert_pem), *std::move(key_pem)};
}

}  // namespace

struct CertificateAuthority::State {
  std::shared_ptr<EVP_PKEY> key;
  std::shared_ptr<X509> cert;
  // Serial 0 is the CA's own certificate.
  mutable std::atomic<uint64_t> next_serial{1};
};

CertificateAuthority::CertificateAuthority(std::shared_ptr<const State> state,
                                           std::string ca_pem,
                                           std::string ca_key_pem)
    : state_(std::move(state)),
      ca_pem_(std::move(ca_pem)),
      ca_key_pem_(std::move(ca_key_pem)) {}

absl::StatusOr<CertificateAuthority> CertificateAuthority::Create(
    const CertificateAuthorityOptions& options) {
  ERR_clear_error();
  absl::StatusOr<Validity> validity =
      ResolveValidity(options.not_before, options.not_after);
  if (!validity.ok()) return validity.status();
  absl::StatusOr<KeyPtr> key = GenerateKey(options.key_type);
  if (!key.ok()) return key.status();
  Profile profile{/*is_ca=*/true, CertificateUsage::kServer, options.key_type};
  absl::StatusOr<X509Ptr> cert =
      BuildCertificate(options.common_name, *validity, profile, /*serial=*/0,
                       key->get(), nullptr, nullptr, nullptr);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<CertificateAndKey> pem = ToPemPair(cert->get(), key->get());
  if (!pem.ok()) return pem.status();

  auto state = std::make_shared<State>();
  state->key = std::shared_ptr<EVP_PKEY>(key->release(), EVP_PKEY_free);
  state->cert = std::shared_ptr<X509>(cert->release(), X509_free);
  return CertificateAuthority(std::move(state), std::move(pem->cert_pem),
                              std::move(pem->key_pem));
}

absl::StatusOr<CertificateAndKey> CertificateAuthority::Issue(
    const CertificateOptions& options) const {
  ERR_clear_error();
  absl::StatusOr<Validity> validity =
      ResolveValidity(options.not_before, options.not_after);
  if (!validity.ok()) return validity.status();
  absl::StatusOr<KeyPtr> key = GenerateKey(options.key_type);
  if (!key.ok()) return key.status();
  Profile profile{/*is_ca=*/false, options.usage, options.key_type};
  absl::StatusOr<X509Ptr> cert = BuildCertificate(
      options.common_name, *validity, profile, state_->next_serial++,
      key->get(), state_->cert.get(), state_->key.get(), &options);
  if (!cert.ok()) return cert.status();
  return ToPemPair(cert->get(), key->get());
}

absl::StatusOr<CertificateAndKey> CertificateAuthority::SelfSigned(
    const CertificateOptions& options) {
  ERR_clear_error();
  absl::StatusOr<Validity> validity =
      ResolveValidity(options.not_before, options.not_after);
  if (!validity.ok()) return validity.status();
  absl::StatusOr<KeyPtr> key = GenerateKey(options.key_type);
  if (!key.ok()) return key.status();
  Profile profile{/*is_ca=*/false, options.usage, options.key_type};
  absl::StatusOr<X509Ptr> cert =
      BuildCertificate(options.common_name, *validity, profile, /*serial=*/1,
                       key->get(), nullptr, nullptr, &options);
  if (!cert.ok()) return cert.status();
  return ToPemPair(cert->get(), key->get());
}

std::string TlsFaultName(TlsFault fault) {
  switch (fault) {
    case TlsFault::kNone:
      return "none";
    case TlsFault::kExpired:
      return "expired";
    case TlsFault::kNotYetValid:
      return "not_yet_valid";
    case TlsFault::kWrongHost:
      return "wrong_host";
    case TlsFault::kUntrustedCa:
      return "untrusted_ca";
  }
  return "unknown";
}

absl::StatusOr<TlsFault> ParseTlsFault(absl::string_view name) {
  for (TlsFault fault :
       {TlsFault::kNone, TlsFault::kExpired, TlsFault::kNotYetValid,
        TlsFault::kWrongHost, TlsFault::kUntrustedCa}) {
    if (name == TlsFaultName(fault)) return fault;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown certificate fault \"", name,
                   "\"; accepted values: expired, not_yet_valid, wrong_host, "
                   "untrusted_ca"));
}

absl::StatusOr<SelfSignedBundle> WriteSelfSignedBundle(const std::string& dir,
                                                       TlsFault fault) {
  if (dir.empty()) {
    return absl::InvalidArgumentError("self-signed bundle directory is empty");
  }
  struct stat info;
  if (lstat(dir.c_str(), &info) != 0 && errno == ENOENT) {
    // Parents as usual; the bundle's own directory private from the start.
    const std::filesystem::path parent =
        std::filesystem::path(dir).parent_path();
    std::error_code error;
    if (!parent.empty()) std::filesystem::create_directories(parent, error);
    if (error || (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)) {
      return absl::PermissionDeniedError(
          absl::StrCat("cannot create directory '", dir,
                       "': ", error ? error.message() : strerror(errno)));
    }
  }
  // The key goes in here: refuse a directory someone else could redirect.
  if (absl::Status private_dir = CheckPrivateDirectory(dir);
      !private_dir.ok()) {
    return private_dir;
  }

  CertificateAuthorityOptions ca_options;
  ca_options.common_name = "Workflows Fake Server CA";
  absl::StatusOr<CertificateAuthority> ca =
      CertificateAuthority::Create(ca_options);
  if (!ca.ok()) return ca.status();
  CertificateOptions server_options;
  server_options.common_name = "localhost";
  server_options.dns_names = {"localhost"};
  server_options.ip_addresses = {"127.0.0.1", "::1"};
  // The CA that signs the served certificate: ca.pem's, except for
  // kUntrustedCa.
  std::optional<CertificateAuthority> signer = *ca;
  const absl::Time now = absl::Now();
  switch (fault) {
    case TlsFault::kNone:
      break;
    case TlsFault::kExpired:
      server_options.not_before = now - absl::Hours(48);
      server_options.not_after = now - absl::Hours(24);
      break;
    case TlsFault::kNotYetValid:
      server_options.not_before = now + absl::Hours(24);
      server_options.not_after = now + absl::Hours(48);
      break;
    case TlsFault::kWrongHost:
      server_options.common_name = kTlsFaultWrongHost;
      server_options.dns_names = {kTlsFaultWrongHost};
      server_options.ip_addresses.clear();
      break;
    case TlsFault::kUntrustedCa: {
      CertificateAuthorityOptions other;
      other.common_name = "Workflows Fake Untrusted CA";
      absl::StatusOr<CertificateAuthority> untrusted =
          CertificateAuthority::Create(other);
      if (!untrusted.ok()) return untrusted.status();
      signer = *std::move(untrusted);
      break;
    }
  }
  absl::StatusOr<CertificateAndKey> server = signer->Issue(server_options);
  if (!server.ok()) return server.status();
  // The default bundle keeps its public files readable; a faulty one is
  // written privately throughout.
  const mode_t public_mode = fault == TlsFault::kNone ? 0644 : 0600;

  // Each file through a fresh O_EXCL|O_NOFOLLOW temporary file and rename(),
  // so a symlink planted at any of these paths is replaced, never followed.
  const std::string root = dir.back() == '/' ? dir : dir + "/";
  if (absl::Status s =
          WriteFileAtomically(root + "ca.pem", ca->ca_pem(), public_mode);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteFileAtomically(root + "server.pem",
                                           server->cert_pem, public_mode);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          WriteFileAtomically(root + "server.key", server->key_pem, 0600);
      !s.ok()) {
    return s;
  }
  return SelfSignedBundle{ca->ca_pem(), *std::move(server)};
}

absl::StatusOr<int> CountCertificates(absl::string_view pem) {
  ERR_clear_error();
  absl::StatusOr<BioPtr> bio = ReadOnlyBio(pem);
  if (!bio.ok()) return bio.status();
  int count = 0;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, NoPassphrase, nullptr));
    if (cert != nullptr) {
      ++count;
      continue;
    }
    if (IsPemNoStartLine()) {
      ERR_clear_error();
      break;
    }
    return OpenSslError(
        absl::StatusCode::kInvalidArgument,
        absl::StrCat("PEM certificate #", count + 1, " does not parse"));
  }
  if (count == 0) {
    return absl::InvalidArgumentError(
        "no certificate found in PEM data (expected a "
        "'-----BEGIN CERTIFICATE-----' block)");
  }
  return count;
}

absl::Status ValidatePrivateKey(absl::string_view pem) {
  // OpenSSL 3's key decoders report "no key here" as a generic "unsupported",
  // so look for a key block by name first to say what is actually wrong.
  if (!absl::StrContains(pem, "-----BEGIN ") ||
      !absl::StrContains(pem, "PRIVATE KEY-----")) {
    return absl::InvalidArgumentError(
        "no private key found in PEM data (expected a "
        "'-----BEGIN PRIVATE KEY-----' or similar block)");
  }
  ERR_clear_error();
  absl::StatusOr<BioPtr> bio = ReadOnlyBio(pem);
  if (!bio.ok()) return bio.status();
  KeyPtr key(
      PEM_read_bio_PrivateKey(bio->get(), nullptr, NoPassphrase, nullptr));
  if (key != nullptr) return absl::OkStatus();
  return OpenSslError(
      absl::StatusCode::kInvalidArgument,
      "PEM private key does not parse (encrypted keys are not supported)");
}

absl::Status ValidateCertificateAndKey(const CertificateAndKey& pair) {
  absl::StatusOr<int> count = CountCertificates(pair.cert_pem);
  if (!count.ok()) return count.status();
  if (absl::Status s = ValidatePrivateKey(pair.key_pem); !s.ok()) return s;

  ERR_clear_error();
  absl::StatusOr<BioPtr> cert_bio = ReadOnlyBio(pair.cert_pem);
  absl::StatusOr<BioPtr> key_bio = ReadOnlyBio(pair.key_pem);
  if (!cert_bio.ok()) return cert_bio.status();
  if (!key_bio.ok()) return key_bio.status();
  X509Ptr cert(
      PEM_read_bio_X509(cert_bio->get(), nullptr, NoPassphrase, nullptr));
  KeyPtr key(
      PEM_read_bio_PrivateKey(key_bio->get(), nullptr, NoPassphrase, nullptr));
  if (cert == nullptr || key == nullptr) {
    return Internal("re-reading validated PEM failed");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return OpenSslError(
        absl::StatusCode::kInvalidArgument,
        "the private key does not belong to the first certificate");
  }
  return absl::OkStatus();
}

}  // namespace workflows::fake
