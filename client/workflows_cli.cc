// workflows_cli: call the Workflows API from the shell.
//
//   workflows_cli --target=localhost:8000 --insecure health
//   workflows_cli --token_file=token.txt get-job abc123 --json
//   workflows_cli --target=host:443 --ca_cert=ca.pem watch-job abc123

#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/time.h"
#include "client/cli.h"

ABSL_FLAG(std::string, target, "",
          "HOST:PORT of the Workflows API (default: "
          "$DESCARTESLABS_WORKFLOWS_HOST/PORT, else "
          "workflows-api.descarteslabs.com:443)");
ABSL_FLAG(bool, insecure, false, "Use a plaintext channel (no TLS, no token)");
ABSL_FLAG(std::string, ca_cert, "",
          "PEM file of root CAs (default: $GRPC_CA_BUNDLE, $SSL_CERT_FILE, ... "
          "else the system store)");
ABSL_FLAG(std::string, token, "",
          "Bearer token; any user can read it with `ps`: prefer --token_file "
          "or $DESCARTESLABS_TOKEN (the default)");
ABSL_FLAG(std::string, token_file, "",
          "File holding the bearer token (one line, at most 64 KiB); not "
          "with --token");
ABSL_FLAG(absl::Duration, timeout, absl::ZeroDuration(),
          "Per-attempt timeout, e.g. 10s (default: 5s unary, 24h streams)");
ABSL_FLAG(bool, json, false, "Print responses as JSON instead of text");
ABSL_FLAG(std::string, request, "",
          "The request in protobuf text format (create-job, search-workflows)");
ABSL_FLAG(int, num_retries, -1,
          "create-job: retries, also on 429 when > 0 (default: 3, not on 429)");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Calls the Descartes Labs Workflows API.\n"
      "usage: workflows_cli [flags] "
      "health|get-workflow ID|search-workflows|create-job|get-job ID|"
      "watch-job ID|cancel-job ID");
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  workflows::CliConfig config;
  config.target = absl::GetFlag(FLAGS_target);
  config.insecure = absl::GetFlag(FLAGS_insecure);
  config.ca_cert = absl::GetFlag(FLAGS_ca_cert);
  config.token = absl::GetFlag(FLAGS_token);
  config.token_file = absl::GetFlag(FLAGS_token_file);
  absl::Duration timeout = absl::GetFlag(FLAGS_timeout);
  if (timeout != absl::ZeroDuration()) config.timeout = timeout;
  config.json = absl::GetFlag(FLAGS_json);
  config.request = absl::GetFlag(FLAGS_request);
  int num_retries = absl::GetFlag(FLAGS_num_retries);
  if (num_retries != -1) config.num_retries = num_retries;
  std::vector<std::string> args(positional.begin() + 1, positional.end());
  return workflows::RunCli(config, args, std::cout, std::cerr);
}
