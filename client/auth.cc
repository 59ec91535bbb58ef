#include "client/auth.h"

#include <cstdlib>
#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace workflows {
namespace {

// gRPC calls GetMetadata before each RPC on a secure channel.
class TokenPlugin : public grpc::MetadataCredentialsPlugin {
 public:
  explicit TokenPlugin(std::shared_ptr<Auth> auth) : auth_(std::move(auth)) {}

  // Token() may do I/O; let gRPC run it off its event loop.
  bool IsBlocking() const override { return true; }
  const char* GetType() const override { return "workflows-token"; }

  grpc::Status GetMetadata(
      grpc::string_ref /*service_url*/, grpc::string_ref /*method_name*/,
      const grpc::AuthContext& /*channel_auth_context*/,
      std::multimap<std::string, std::string>* metadata) override {
    absl::StatusOr<std::string> token = auth_->Token();
    if (!token.ok()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          std::string(token.status().message()));
    }
    metadata->emplace("authorization", absl::StrCat("Bearer ", *token));
    return grpc::Status::OK;
  }

 private:
  std::shared_ptr<Auth> auth_;
};

// Adds a token fetched beforehand.
class FixedTokenPlugin : public grpc::MetadataCredentialsPlugin {
 public:
  explicit FixedTokenPlugin(std::string token)
      : header_(absl::StrCat("Bearer ", token)) {}

  bool IsBlocking() const override { return false; }
  const char* GetType() const override { return "workflows-bearer"; }

  grpc::Status GetMetadata(
      grpc::string_ref /*service_url*/, grpc::string_ref /*method_name*/,
      const grpc::AuthContext& /*channel_auth_context*/,
      std::multimap<std::string, std::string>* metadata) override {
    metadata->emplace("authorization", header_);
    return grpc::Status::OK;
  }

 private:
  const std::string header_;
};

}  // namespace

Auth::~Auth() = default;

std::shared_ptr<Auth> Auth::GetDefault() {
  static const auto* const kDefault =
      new std::shared_ptr<Auth>(std::make_shared<EnvironmentAuth>());
  return *kDefault;
}

StaticTokenAuth::StaticTokenAuth(std::string token)
    : token_(std::move(token)) {}

absl::StatusOr<std::string> StaticTokenAuth::Token() {
  if (token_.empty()) {
    return absl::UnauthenticatedError(
        "StaticTokenAuth was given an empty token");
  }
  return token_;
}

EnvironmentAuth::EnvironmentAuth(std::string variable)
    : variable_(std::move(variable)) {}

absl::StatusOr<std::string> EnvironmentAuth::Token() {
  const char* value = std::getenv(variable_.c_str());
  if (value == nullptr || *value == '\0') {
    return absl::UnauthenticatedError(
        absl::StrCat("no Workflows token: the environment variable ", variable_,
                     " is not set (set it, or give the client an Auth such as "
                     "StaticTokenAuth)"));
  }
  return std::string(value);
}

std::shared_ptr<grpc::CallCredentials> MakeCallCredentials(
    std::shared_ptr<Auth> auth) {
  return grpc::MetadataCredentialsFromPlugin(
      std::make_unique<TokenPlugin>(std::move(auth)));
}

std::shared_ptr<grpc::CallCredentials> BearerTokenCredentials(
    std::string token) {
  return grpc::MetadataCredentialsFromPlugin(
      std::make_unique<FixedTokenPlugin>(std::move(token)));
}

}  // namespace workflows
