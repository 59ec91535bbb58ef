#include "fake_server/certificates.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows::fake {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr ParseCertificate(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// subjectAltName entries as "DNS:name" / "IP:address" strings.
std::vector<std::string> SubjectAltNames(X509* cert) {
  std::vector<std::string> out;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS) {
      out.push_back(
          absl::StrCat("DNS:", reinterpret_cast<const char*>(
                                   ASN1_STRING_get0_data(name->d.dNSName))));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* ip = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      int family = ASN1_STRING_length(ip) == 4 ? AF_INET : AF_INET6;
      inet_ntop(family, ASN1_STRING_get0_data(ip), text, sizeof(text));
      out.push_back(absl::StrCat("IP:", text));
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::string CommonName(const X509_NAME* name) {
  char buffer[256] = {};
  X509_NAME_get_text_by_NID(const_cast<X509_NAME*>(name), NID_commonName,
                            buffer, sizeof(buffer));
  return buffer;
}

std::string Serial(X509* cert) {
  BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr);
  char* hex = BN_bn2hex(bn);
  std::string out(hex);
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

// Verifies `leaf` against `ca` as a TLS peer would (at the current time, or
// at `at` if given) and returns the X509_V_* result.
int Verify(X509* leaf, X509* ca, std::optional<absl::Time> at = {}) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf, nullptr);
  if (at.has_value()) X509_STORE_CTX_set_time(ctx, 0, absl::ToTimeT(*at));
  X509_verify_cert(ctx);
  int result = X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return result;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

TEST(CertificateAuthorityTest, CaCertificateIsASelfSignedCa) {
  CertificateAuthorityOptions options;
  options.common_name = "My Test CA";
  absl::StatusOr<CertificateAuthority> ca =
      CertificateAuthority::Create(options);
  ASSERT_TRUE(ca.ok()) << ca.status();
  X509Ptr cert = ParseCertificate(ca->ca_pem());
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(CommonName(X509_get_subject_name(cert.get())), "My Test CA");
  EXPECT_EQ(X509_check_issued(cert.get(), cert.get()), X509_V_OK);
  EXPECT_EQ(X509_check_ca(cert.get()), 1);  // basicConstraints CA:TRUE
  EXPECT_TRUE(X509_get_key_usage(cert.get()) & KU_KEY_CERT_SIGN);
  EXPECT_TRUE(ValidateCertificateAndKey({ca->ca_pem(), ca->ca_key_pem()}).ok());
}

TEST(CertificateAuthorityTest, IssuedCertificateHasRequestedFields) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  CertificateOptions options;
  options.common_name = "api.test";
  options.dns_names = {"localhost", "api.test"};
  options.ip_addresses = {"127.0.0.1", "::1"};
  options.not_before =
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) - 3600);
  options.not_after = *options.not_before + absl::Hours(48);
  absl::StatusOr<CertificateAndKey> issued = ca->Issue(options);
  ASSERT_TRUE(issued.ok()) << issued.status();

  X509Ptr cert = ParseCertificate(issued->cert_pem);
  X509Ptr ca_cert = ParseCertificate(ca->ca_pem());
  ASSERT_NE(cert, nullptr);
  EXPECT_THAT(
      SubjectAltNames(cert.get()),
      ElementsAre("DNS:localhost", "DNS:api.test", "IP:127.0.0.1", "IP:::1"));
  EXPECT_EQ(CommonName(X509_get_subject_name(cert.get())), "api.test");
  EXPECT_EQ(CommonName(X509_get_issuer_name(cert.get())), "Workflows Fake CA");
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert.get()),
                                 absl::ToTimeT(*options.not_before)),
            0);
  EXPECT_EQ(ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert.get()),
                                 absl::ToTimeT(*options.not_after)),
            0);
  EXPECT_EQ(X509_get_extended_key_usage(cert.get()), XKU_SSL_SERVER);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_EQ(X509_check_issued(ca_cert.get(), cert.get()), X509_V_OK);
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(ca_cert.get())), 1);
  EXPECT_EQ(Verify(cert.get(), ca_cert.get()), X509_V_OK);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(cert.get())), EVP_PKEY_EC);
  EXPECT_TRUE(ValidateCertificateAndKey(*issued).ok());
}

TEST(CertificateAuthorityTest, UsageSelectsExtendedKeyUsage) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  CertificateOptions options;
  options.usage = CertificateUsage::kClient;
  X509Ptr client = ParseCertificate(ca->Issue(options)->cert_pem);
  EXPECT_EQ(X509_get_extended_key_usage(client.get()), XKU_SSL_CLIENT);
  options.usage = CertificateUsage::kServerAndClient;
  X509Ptr both = ParseCertificate(ca->Issue(options)->cert_pem);
  EXPECT_EQ(X509_get_extended_key_usage(both.get()),
            XKU_SSL_SERVER | XKU_SSL_CLIENT);
  // No SANs were asked for, so none are written.
  EXPECT_THAT(SubjectAltNames(both.get()), ::testing::IsEmpty());
}

TEST(CertificateAuthorityTest, RsaKeysOnRequest) {
  CertificateAuthorityOptions ca_options;
  ca_options.key_type = KeyType::kRsa2048;
  absl::StatusOr<CertificateAuthority> ca =
      CertificateAuthority::Create(ca_options);
  ASSERT_TRUE(ca.ok()) << ca.status();
  CertificateOptions options;
  options.key_type = KeyType::kRsa2048;
  absl::StatusOr<CertificateAndKey> issued = ca->Issue(options);
  ASSERT_TRUE(issued.ok()) << issued.status();
  X509Ptr cert = ParseCertificate(issued->cert_pem);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(cert.get())), EVP_PKEY_RSA);
  EXPECT_EQ(EVP_PKEY_get_bits(X509_get0_pubkey(cert.get())), 2048);
  EXPECT_TRUE(X509_get_key_usage(cert.get()) & KU_KEY_ENCIPHERMENT);
  EXPECT_TRUE(ValidateCertificateAndKey(*issued).ok());
}

TEST(CertificateAuthorityTest, ValidityWindowIsEnforcedByVerification) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  X509Ptr ca_cert = ParseCertificate(ca->ca_pem());
  CertificateOptions options;
  options.not_before = absl::Now() - absl::Hours(1);
  options.not_after = absl::Now() + absl::Hours(1);
  X509Ptr cert = ParseCertificate(ca->Issue(options)->cert_pem);
  EXPECT_EQ(Verify(cert.get(), ca_cert.get()), X509_V_OK);
  EXPECT_EQ(Verify(cert.get(), ca_cert.get(), absl::Now() + absl::Hours(2)),
            X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_EQ(Verify(cert.get(), ca_cert.get(), absl::Now() - absl::Minutes(90)),
            X509_V_ERR_CERT_NOT_YET_VALID);
}

TEST(CertificateAuthorityTest, SerialsAreUniqueAcrossCopies) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  CertificateAuthority copy = *ca;
  std::set<std::string> serials = {
      Serial(ParseCertificate(ca->ca_pem()).get())};
  for (int i = 0; i < 10; ++i) {
    const CertificateAuthority& issuer = i % 2 == 0 ? *ca : copy;
    absl::StatusOr<CertificateAndKey> issued = issuer.Issue({});
    ASSERT_TRUE(issued.ok()) << issued.status();
    EXPECT_TRUE(serials.insert(Serial(ParseCertificate(issued->cert_pem).get()))
                    .second);
  }
  EXPECT_EQ(copy.ca_pem(), ca->ca_pem());
}

TEST(CertificateAuthorityTest, ConcurrentIssueGivesDistinctSerials) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::Mutex mutex;
  std::set<std::string> serials;
  int failures = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        absl::StatusOr<CertificateAndKey> issued = ca->Issue({});
        absl::MutexLock lock(&mutex);
        if (!issued.ok()) {
          ++failures;
          continue;
        }
        serials.insert(Serial(ParseCertificate(issued->cert_pem).get()));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(serials.size(), 40u);
}

TEST(CertificateAuthorityTest, SelfSignedCertificateIsItsOwnIssuer) {
  CertificateOptions options;
  options.dns_names = {"localhost"};
  absl::StatusOr<CertificateAndKey> self =
      CertificateAuthority::SelfSigned(options);
  ASSERT_TRUE(self.ok()) << self.status();
  X509Ptr cert = ParseCertificate(self->cert_pem);
  EXPECT_EQ(X509_check_issued(cert.get(), cert.get()), X509_V_OK);
  EXPECT_TRUE(X509_get_extension_flags(cert.get()) & EXFLAG_SS);
  // A peer that pins it as its only trust root accepts it.
  EXPECT_EQ(Verify(cert.get(), cert.get()), X509_V_OK);
  EXPECT_THAT(SubjectAltNames(cert.get()), ElementsAre("DNS:localhost"));
  EXPECT_TRUE(ValidateCertificateAndKey(*self).ok());
}

TEST(CertificateAuthorityTest, BadOptionsAreRejectedWithReasons) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();

  CertificateOptions bad_ip;
  bad_ip.ip_addresses = {"300.1.2.3"};
  absl::StatusOr<CertificateAndKey> issued = ca->Issue(bad_ip);
  EXPECT_EQ(issued.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(issued.status().message(), HasSubstr("'300.1.2.3'"));

  CertificateOptions bad_dns;
  bad_dns.dns_names = {""};
  issued = ca->Issue(bad_dns);
  EXPECT_EQ(issued.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(issued.status().message(), HasSubstr("invalid DNS name"));

  CertificateOptions backwards;
  backwards.not_before = absl::Now();
  backwards.not_after = absl::Now() - absl::Hours(1);
  issued = ca->Issue(backwards);
  EXPECT_EQ(issued.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(issued.status().message(),
              HasSubstr("must be later than not_before"));

  CertificateOptions no_name;
  no_name.common_name = "";
  EXPECT_THAT(CertificateAuthority::SelfSigned(no_name).status().message(),
              HasSubstr("common_name is empty"));
}

TEST(PemValidationTest, CountsCertificates) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<CertificateAndKey> leaf = ca->Issue({});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  EXPECT_EQ(CountCertificates(ca->ca_pem()).value_or(-1), 1);
  EXPECT_EQ(CountCertificates(leaf->cert_pem + ca->ca_pem()).value_or(-1), 2);
}

TEST(PemValidationTest, GarbageIsRejectedWithAClearMessage) {
  absl::StatusOr<int> count = CountCertificates("this is not PEM");
  EXPECT_EQ(count.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(count.status().message(), HasSubstr("no certificate found"));

  EXPECT_THAT(CountCertificates("").status().message(),
              HasSubstr("no certificate found"));

  absl::Status key = ValidatePrivateKey("garbage");
  EXPECT_EQ(key.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(key.message(), HasSubstr("no private key found"));
}

TEST(PemValidationTest, CorruptBlockReportsOpenSslReason) {
  absl::StatusOr<int> count = CountCertificates(
      "-----BEGIN CERTIFICATE-----\nnot!base64\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(count.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(count.status().message(),
              HasSubstr("PEM certificate #1 does not parse: error:"));

  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  std::string truncated = ca->ca_pem().substr(0, ca->ca_pem().size() / 2);
  count = CountCertificates(ca->ca_pem() + truncated);
  EXPECT_THAT(count.status().message(),
              HasSubstr("PEM certificate #2 does not parse"));
}

TEST(PemValidationTest, KeyAndCertificateAreNotInterchangeable) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  EXPECT_THAT(CountCertificates(ca->ca_key_pem()).status().message(),
              HasSubstr("no certificate found"));
  EXPECT_THAT(ValidatePrivateKey(ca->ca_pem()).message(),
              HasSubstr("no private key found"));
  EXPECT_TRUE(ValidatePrivateKey(ca->ca_key_pem()).ok());
}

TEST(PemValidationTest, MismatchedKeyIsRejected) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<CertificateAndKey> a = ca->Issue({});
  absl::StatusOr<CertificateAndKey> b = ca->Issue({});
  ASSERT_TRUE(a.ok() && b.ok());
  absl::Status status = ValidateCertificateAndKey({a->cert_pem, b->key_pem});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("does not belong"));
}

TEST(WriteSelfSignedBundleTest, WritesUsableFiles) {
  std::string dir = TempDir() + "/bundle/nested";
  absl::StatusOr<SelfSignedBundle> bundle = WriteSelfSignedBundle(dir);
  ASSERT_TRUE(bundle.ok()) << bundle.status();

  std::string ca_pem = ReadFile(dir + "/ca.pem");
  CertificateAndKey server{ReadFile(dir + "/server.pem"),
                           ReadFile(dir + "/server.key")};
  EXPECT_EQ(CountCertificates(ca_pem).value_or(-1), 1);
  EXPECT_TRUE(ValidateCertificateAndKey(server).ok());
  X509Ptr ca = ParseCertificate(ca_pem);
  X509Ptr leaf = ParseCertificate(server.cert_pem);
  EXPECT_EQ(Verify(leaf.get(), ca.get()), X509_V_OK);
  EXPECT_THAT(SubjectAltNames(leaf.get()),
              UnorderedElementsAre("DNS:localhost", "IP:127.0.0.1", "IP:::1"));
  EXPECT_EQ(X509_get_extended_key_usage(leaf.get()), XKU_SSL_SERVER);

  // What it returns is what it wrote: the server serves from memory.
  EXPECT_EQ(bundle->ca_pem, ca_pem);
  EXPECT_EQ(bundle->server.cert_pem, server.cert_pem);
  EXPECT_EQ(bundle->server.key_pem, server.key_pem);

  struct stat info;
  ASSERT_EQ(stat((dir + "/server.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
  ASSERT_EQ(stat((dir + "/ca.pem").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644);
  // A directory it creates is private.
  ASSERT_EQ(stat(dir.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700);
}

TEST(WriteSelfSignedBundleTest, PlantedSymlinkIsNotFollowed) {
  std::string dir = TempDir() + "/bundle_planted";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  std::string victim = TempDir() + "/victim_file";
  std::ofstream(victim) << "precious";
  ASSERT_EQ(symlink(victim.c_str(), (dir + "/server.key").c_str()), 0);
  absl::StatusOr<SelfSignedBundle> bundle = WriteSelfSignedBundle(dir);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(ReadFile(victim), "precious");
  struct stat info;
  ASSERT_EQ(lstat((dir + "/server.key").c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode));
  EXPECT_EQ(ReadFile(dir + "/server.key"), bundle->server.key_pem);
}

TEST(WriteSelfSignedBundleTest, RefusesSymlinkedOrSharedDirectory) {
  std::string real = TempDir() + "/bundle_real";
  ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
  std::string link = TempDir() + "/bundle_link";
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  absl::Status status = WriteSelfSignedBundle(link).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr(link));
  EXPECT_THAT(status.message(), HasSubstr("symbolic link"));

  std::string shared = TempDir() + "/bundle_shared";
  ASSERT_EQ(mkdir(shared.c_str(), 0700), 0);
  ASSERT_EQ(chmod(shared.c_str(), 0777), 0);
  status = WriteSelfSignedBundle(shared).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("writable by group or others"));
  // Nothing was written into either.
  EXPECT_EQ(ReadFile(real + "/server.key"), "");
  EXPECT_EQ(ReadFile(shared + "/server.key"), "");
}

TEST(WriteSelfSignedBundleTest, ReplacesExistingFilesAndTightensKeyMode) {
  std::string dir = TempDir() + "/bundle_again";
  ASSERT_TRUE(WriteSelfSignedBundle(dir).ok());
  std::string first_ca = ReadFile(dir + "/ca.pem");
  ASSERT_EQ(chmod((dir + "/server.key").c_str(), 0644), 0);
  ASSERT_TRUE(WriteSelfSignedBundle(dir).ok());
  EXPECT_NE(ReadFile(dir + "/ca.pem"), first_ca);
  struct stat info;
  ASSERT_EQ(stat((dir + "/server.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
}

TEST(WriteSelfSignedBundleTest, EachFaultBreaksVerificationItsOwnWay) {
  struct Case {
    TlsFault fault;
    int verify_result;
    std::vector<std::string> sans;
  };
  const std::vector<std::string> localhost = {"DNS:localhost", "IP:127.0.0.1",
                                              "IP:::1"};
  for (const Case& c : std::vector<Case>{
           {TlsFault::kNone, X509_V_OK, localhost},
           {TlsFault::kExpired, X509_V_ERR_CERT_HAS_EXPIRED, localhost},
           {TlsFault::kNotYetValid, X509_V_ERR_CERT_NOT_YET_VALID, localhost},
           {TlsFault::kWrongHost, X509_V_OK, {"DNS:wrong.example.com"}},
           {TlsFault::kUntrustedCa,
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, localhost},
       }) {
    SCOPED_TRACE(TlsFaultName(c.fault));
    const std::string dir =
        TempDir() + "/fault_bundle_" + TlsFaultName(c.fault);
    absl::StatusOr<SelfSignedBundle> bundle =
        WriteSelfSignedBundle(dir, c.fault);
    ASSERT_TRUE(bundle.ok()) << bundle.status();
    const std::string ca_pem = ReadFile(dir + "/ca.pem");
    EXPECT_EQ(ca_pem, bundle->ca_pem);
    EXPECT_EQ(ReadFile(dir + "/server.pem"), bundle->server.cert_pem);
    EXPECT_EQ(ReadFile(dir + "/server.key"), bundle->server.key_pem);
    EXPECT_TRUE(ValidateCertificateAndKey(bundle->server).ok());
    X509Ptr ca = ParseCertificate(ca_pem);
    X509Ptr leaf = ParseCertificate(bundle->server.cert_pem);
    ASSERT_NE(ca, nullptr);
    ASSERT_NE(leaf, nullptr);
    EXPECT_EQ(Verify(leaf.get(), ca.get()), c.verify_result);
    EXPECT_THAT(SubjectAltNames(leaf.get()), UnorderedElementsAreArray(c.sans));
    // A faulty bundle is private throughout; the default keeps its
    // certificates world-readable, as before.
    const mode_t expected_mode = c.fault == TlsFault::kNone ? 0644 : 0600;
    for (const char* name : {"ca.pem", "server.pem"}) {
      struct stat info;
      ASSERT_EQ(stat((dir + "/" + name).c_str(), &info), 0) << name;
      EXPECT_EQ(info.st_mode & 0777, expected_mode) << name;
    }
    struct stat key_info;
    ASSERT_EQ(stat((dir + "/server.key").c_str(), &key_info), 0);
    EXPECT_EQ(key_info.st_mode & 0777, 0600);
  }
}

TEST(WriteSelfSignedBundleTest, FaultyBundleNeverFollowsAPlantedSymlink) {
  std::string dir = TempDir() + "/fault_bundle_planted";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  std::string victim = TempDir() + "/fault_victim_file";
  std::ofstream(victim) << "precious";
  ASSERT_EQ(symlink(victim.c_str(), (dir + "/ca.pem").c_str()), 0);
  ASSERT_TRUE(WriteSelfSignedBundle(dir, TlsFault::kExpired).ok());
  EXPECT_EQ(ReadFile(victim), "precious");
  struct stat info;
  ASSERT_EQ(lstat((dir + "/ca.pem").c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode));
}

TEST(TlsFaultTest, NamesRoundTripAndUnknownNamesListTheAcceptedOnes) {
  for (TlsFault fault :
       {TlsFault::kNone, TlsFault::kExpired, TlsFault::kNotYetValid,
        TlsFault::kWrongHost, TlsFault::kUntrustedCa}) {
    absl::StatusOr<TlsFault> parsed = ParseTlsFault(TlsFaultName(fault));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, fault);
  }
  EXPECT_EQ(TlsFaultName(TlsFault::kNotYetValid), "not_yet_valid");
  absl::Status bad = ParseTlsFault("revoked").status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(),
              AllOf(HasSubstr("\"revoked\""),
                    HasSubstr("expired, not_yet_valid, wrong_host, "
                              "untrusted_ca")));
  EXPECT_FALSE(ParseTlsFault("").ok());
  EXPECT_FALSE(ParseTlsFault("Expired").ok());
}

TEST(WriteSelfSignedBundleTest, UnwritableDirectoryNamesThePath) {
  // Tests may run as root, so permission bits alone cannot make a directory
  // unwritable; a regular file in the way can.
  std::string file = TempDir() + "/in_the_way";
  std::ofstream(file) << "x";
  std::string dir = file + "/sub";
  absl::Status status = WriteSelfSignedBundle(dir).status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(dir));

  status = WriteSelfSignedBundle(file).status();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("\"", file, "\"")));

  EXPECT_THAT(WriteSelfSignedBundle("").status().message(), HasSubstr("empty"));
}

}  // namespace
}  // namespace workflows::fake
