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
  std::string token;    // empty = $DESCARTESLABS_TOKEN
  // Unset = the RPC's default (5 s unary, 24 h streams).
  std::optional<absl::Duration> timeout;
  bool json = false;
  // The request as protobuf text (create-job, search-workflows).
  std::string request;
  std::optional<int> num_retries;  // create-job
};

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // RPC error or not SERVING
inline constexpr int kExitUsage = 2;    // bad flags or arguments

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
