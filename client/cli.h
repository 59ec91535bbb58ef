#ifndef WORKFLOWS_CLIENT_CLI_H_
#define WORKFLOWS_CLIENT_CLI_H_

// The logic of `workflows_cli`, separate from flag parsing so tests can run
// it. Subcommands: health, get-workflow ID, search-workflows, create-job,
// get-job ID, watch-job ID, cancel-job ID.
//
//   CliConfig config;
//   config.target = "localhost:8000";
//   config.insecure = true;
//   int exit_code = RunCli(config, {"get-job", "abc"}, std::cout, std::cerr);
//
// The token comes from --token_file, --token (which `ps` shows) or
// $DESCARTESLABS_TOKEN, in that order of precedence; --token_file and
// --token together are an error.

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace workflows {

struct CliConfig {
  std::string target;  // HOST:PORT; empty = the client's defaults
  bool insecure = false;
  std::string ca_cert;  // a PEM file
  // The bearer token. Visible to anyone running `ps` when given as a flag:
  // prefer token_file or $DESCARTESLABS_TOKEN (used when both are empty).
  std::string token;
  // A file holding the token (see ReadTokenFile). Exclusive with `token`.
  std::string token_file;
  // Unset = the RPC's default (5 s unary, 24 h streams).
  std::optional<absl::Duration> timeout;
  bool json = false;
  // The request as protobuf text (create-job, search-workflows).
  std::string request;
  std::optional<int> num_retries;  // create-job
};

// Exit codes of every command but `health`.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // RPC error or unprintable response
inline constexpr int kExitUsage = 2;    // bad flags or arguments

// Exit codes of `health`, exactly those of grpc_health_probe, so scripts
// and Kubernetes probes written for it work unchanged. The connection is
// made first (within --timeout, as grpc_health_probe dials with its
// connect timeout); the check gets what is left. A client on a ready
// channel (ClientOptions::channel) skips that step: any error is then an
// RPC failure.
inline constexpr int kHealthServing = 0;
inline constexpr int kHealthInvalidArguments = 1;
inline constexpr int kHealthConnectionFailure = 2;  // could not connect
inline constexpr int kHealthRpcFailure = 3;         // any other error
inline constexpr int kHealthUnhealthy = 4;          // not SERVING

// The largest token file ReadTokenFile accepts. Bearer tokens (JWTs) are a
// few KiB; anything this big is the wrong file.
inline constexpr size_t kMaxTokenFileBytes = 64 * 1024;

// The token in file `path`: its contents without one trailing newline
// ("\n" or "\r\n"). INVALID_ARGUMENT, naming the file, when it is empty,
// larger than kMaxTokenFileBytes, or holds a character not allowed in a
// header value (e.g. a second line); NOT_FOUND when it cannot be read.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// Splits "HOST:PORT" (or "[IPv6]:PORT") into ClientOptions::host and port.
absl::Status ParseTarget(const std::string& target, ClientOptions* options);

// Builds the client options for `config`.
absl::StatusOr<ClientOptions> MakeClientOptions(const CliConfig& config);

// Runs `args` (the subcommand and its arguments), writing responses to `out`
// and diagnostics to `err`. Returns the process exit code.
int RunCli(const CliConfig& config, const std::vector<std::string>& args,
           std::ostream& out, std::ostream& err);

// Same, with an existing client (for tests).
int RunCliWithClient(Client& client, const CliConfig& config,
                     const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err);

}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_CLI_H_
