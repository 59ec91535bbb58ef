#include "testing/test_certificate_authority.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/matchers.h"

namespace workflows::testing {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr Parse(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// Verifies `leaf_pem` against `root_pem` for `purpose` the way a TLS peer
// does, and returns the X509_V_* result.
int Verify(const std::string& leaf_pem, const std::string& root_pem,
           int purpose) {
  X509Ptr leaf = Parse(leaf_pem);
  X509Ptr root = Parse(root_pem);
  if (leaf == nullptr || root == nullptr) return -1;
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, root.get());
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, leaf.get(), nullptr);
  X509_STORE_CTX_set_purpose(ctx, purpose);
  X509_verify_cert(ctx);
  int result = X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return result;
}

class TestCertificateAuthorityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<TestCertificateAuthority> ca =
        TestCertificateAuthority::Create();
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_ = std::make_unique<TestCertificateAuthority>(*std::move(ca));
  }

  // Mints with `mint`, failing the test on error.
  CertificateAndKey Mint(absl::StatusOr<CertificateAndKey> minted) {
    EXPECT_TRUE(minted.ok()) << minted.status();
    return minted.value_or(CertificateAndKey{});
  }

  std::unique_ptr<TestCertificateAuthority> ca_;
};

TEST_F(TestCertificateAuthorityTest, ServerCertificateIsTrustedForLocalhost) {
  CertificateAndKey cert = Mint(ca_->ServerCertificate());
  EXPECT_EQ(Verify(cert.cert_pem, ca_->ca_pem(), X509_PURPOSE_SSL_SERVER),
            X509_V_OK);
  X509Ptr x = Parse(cert.cert_pem);
  EXPECT_EQ(X509_check_host(x.get(), "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(x.get(), "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(x.get(), "::1", 0), 1);
  EXPECT_THAT(fake::ValidateCertificateAndKey(cert),
              ::workflows::testing::IsOk());
}

TEST_F(TestCertificateAuthorityTest, ServerCertificateForCustomNames) {
  CertificateAndKey cert =
      Mint(ca_->ServerCertificate({"svc.internal"}, {"10.1.2.3"}));
  X509Ptr x = Parse(cert.cert_pem);
  EXPECT_EQ(X509_check_host(x.get(), "svc.internal", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(x.get(), "localhost", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(x.get(), "10.1.2.3", 0), 1);
}

TEST_F(TestCertificateAuthorityTest, ExpiredAndNotYetValid) {
  EXPECT_EQ(Verify(Mint(ca_->ExpiredServerCertificate()).cert_pem,
                   ca_->ca_pem(), X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_CERT_HAS_EXPIRED);
  EXPECT_EQ(Verify(Mint(ca_->NotYetValidServerCertificate()).cert_pem,
                   ca_->ca_pem(), X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_CERT_NOT_YET_VALID);
}

TEST_F(TestCertificateAuthorityTest, WrongHostIsTrustedButNamesAnotherHost) {
  CertificateAndKey cert = Mint(ca_->WrongHostServerCertificate());
  EXPECT_EQ(Verify(cert.cert_pem, ca_->ca_pem(), X509_PURPOSE_SSL_SERVER),
            X509_V_OK);
  X509Ptr x = Parse(cert.cert_pem);
  EXPECT_EQ(X509_check_host(x.get(), TestCertificateAuthority::kWrongHost, 0, 0,
                            nullptr),
            1);
  EXPECT_EQ(X509_check_host(x.get(), "localhost", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(x.get(), "127.0.0.1", 0), 0);
}

TEST_F(TestCertificateAuthorityTest, SelfSignedIsNotTrustedByTheCa) {
  CertificateAndKey cert =
      Mint(TestCertificateAuthority::SelfSignedServerCertificate());
  EXPECT_EQ(Verify(cert.cert_pem, ca_->ca_pem(), X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
  EXPECT_EQ(Verify(cert.cert_pem, cert.cert_pem, X509_PURPOSE_SSL_SERVER),
            X509_V_OK);
}

TEST_F(TestCertificateAuthorityTest, UntrustedCaIsADifferentCa) {
  EXPECT_NE(ca_->untrusted_ca_pem(), ca_->ca_pem());
  CertificateAndKey server = Mint(ca_->UntrustedCaServerCertificate());
  EXPECT_EQ(Verify(server.cert_pem, ca_->ca_pem(), X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  EXPECT_EQ(
      Verify(server.cert_pem, ca_->untrusted_ca_pem(), X509_PURPOSE_SSL_SERVER),
      X509_V_OK);
  CertificateAndKey client = Mint(ca_->UntrustedClientCertificate());
  EXPECT_EQ(Verify(client.cert_pem, ca_->ca_pem(), X509_PURPOSE_SSL_CLIENT),
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
}

TEST_F(TestCertificateAuthorityTest, ClientCertificateIsForClientAuthOnly) {
  CertificateAndKey client = Mint(ca_->ClientCertificate("alice"));
  EXPECT_EQ(Verify(client.cert_pem, ca_->ca_pem(), X509_PURPOSE_SSL_CLIENT),
            X509_V_OK);
  EXPECT_EQ(Verify(client.cert_pem, ca_->ca_pem(), X509_PURPOSE_SSL_SERVER),
            X509_V_ERR_INVALID_PURPOSE);
  X509Ptr x = Parse(client.cert_pem);
  char cn[64] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(x.get()), NID_commonName, cn,
                            sizeof(cn));
  EXPECT_STREQ(cn, "alice");
}

TEST_F(TestCertificateAuthorityTest, CopiesShareTheCa) {
  TestCertificateAuthority copy = *ca_;
  EXPECT_EQ(copy.ca_pem(), ca_->ca_pem());
  EXPECT_EQ(Verify(Mint(copy.ServerCertificate()).cert_pem, ca_->ca_pem(),
                   X509_PURPOSE_SSL_SERVER),
            X509_V_OK);
}

}  // namespace
}  // namespace workflows::testing
