#ifndef WORKFLOWS_CLIENT_AUTH_H_
#define WORKFLOWS_CLIENT_AUTH_H_

// Bearer tokens for the Workflows API.
//
//   ClientOptions options;
//   options.auth = std::make_shared<StaticTokenAuth>("eyJ...");
//   // or leave it unset: Auth::GetDefault() reads $DESCARTESLABS_TOKEN.
//
// The client asks for the token before every call attempt and sends it on
// secure channels through a gRPC MetadataCredentialsPlugin, so an Auth may
// rotate tokens at will, and a missing token fails the call with the Auth's
// error (e.g. UNAUTHENTICATED) without retrying.
// gRPC never sends call credentials over insecure channels: there no
// `authorization` header is sent unless
// ClientOptions::send_token_on_insecure_channel is set.

#include <grpcpp/security/credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace workflows {

// A source of bearer tokens. Implementations must be thread-safe: gRPC may
// call Token() from its own threads.
class Auth {
 public:
  virtual ~Auth();

  // The current token, without the "Bearer " prefix. Errors (e.g.
  // UNAUTHENTICATED for a missing token) fail the call that needed it.
  virtual absl::StatusOr<std::string> Token() = 0;

  // The process-wide default: an EnvironmentAuth on DESCARTESLABS_TOKEN.
  static std::shared_ptr<Auth> GetDefault();
};

// Always the same token, given at construction.
class StaticTokenAuth : public Auth {
 public:
  explicit StaticTokenAuth(std::string token);
  // UNAUTHENTICATED when the token is empty.
  absl::StatusOr<std::string> Token() override;

 private:
  const std::string token_;
};

// Reads the token from an environment variable at every call, so a missing
// variable is an error of the call, not of constructing the client.
class EnvironmentAuth : public Auth {
 public:
  static constexpr char kDefaultVariable[] = "DESCARTESLABS_TOKEN";

  explicit EnvironmentAuth(std::string variable = kDefaultVariable);
  absl::StatusOr<std::string> Token() override;

 private:
  const std::string variable_;
};

// Call credentials that add `authorization: Bearer <token>`, asking `auth`
// for the token on every call; for channels built outside the Client. Note
// that gRPC turns a token error inside a plugin into UNAVAILABLE (which the
// default policy retries): the Client itself therefore fetches the token
// before each attempt and uses BearerTokenCredentials.
std::shared_ptr<grpc::CallCredentials> MakeCallCredentials(
    std::shared_ptr<Auth> auth);

// Call credentials (a MetadataCredentialsPlugin) that add
// `authorization: Bearer <token>` to one call.
std::shared_ptr<grpc::CallCredentials> BearerTokenCredentials(
    std::string token);

}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_AUTH_H_
