#ifndef WORKFLOWS_FAKE_SERVER_SERVER_FLAGS_H_
#define WORKFLOWS_FAKE_SERVER_SERVER_FLAGS_H_

// Command-line flags of the standalone fake server (workflows_fake_server),
// parsed so that every mistake is an error naming the flag (the binary then
// exits with code 2), and checked before anything starts.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fake_server/text_limits.h"

namespace workflows {
namespace fake {

// Everything the flags say, with files not yet read.
struct StandaloneConfig {
  std::string listen = "127.0.0.1:0";
  std::string port_file;
  std::string tls_cert;
  std::string tls_key;
  std::string client_ca;
  std::string tls_self_signed_dir;
  // A TlsFaultName() other than "none", or empty for a valid certificate.
  std::string tls_fault;
  std::vector<std::string> scenarios;
  std::string journal;
  bool log_calls = false;
  // Journal limits (see JournalOptions) and the request size limit.
  int64_t journal_max_calls = 100000;
  int64_t journal_max_bytes = int64_t{32} << 20;
  int64_t journal_max_value_bytes = int64_t{64} << 10;
  int64_t journal_max_sessions = 1024;
  std::vector<std::string> sensitive_headers;
  int64_t max_receive_message_bytes = int64_t{4} << 20;
  bool allow_non_loopback = false;
  bool allow_remote_control = false;
  bool simulated_clock = false;
  // --max_scenario_depth, --max_scenario_bytes.
  TextParseLimits parse_limits;
  // How long running calls may take to finish after SIGTERM/SIGINT.
  absl::Duration shutdown_grace = absl::Seconds(3);
  std::string control_token_file;
  bool help = false;
};

// The largest --shutdown_grace.
inline constexpr absl::Duration kMaxShutdownGrace = absl::Hours(1);

// Parses argv (argv[0] is skipped). Accepts --flag=value, --flag value,
// --bool, --nobool and --bool=true|false; --scenario may repeat (and takes a
// comma-separated list). Unknown flags, missing or unparsable values and
// positional arguments are INVALID_ARGUMENT naming the flag. Uses the absl
// flags defined in server_flags.cc for parsing and help texts.
absl::StatusOr<StandaloneConfig> ParseStandaloneFlags(int argc, char** argv);

// Checks the configuration without touching the network: --listen is
// HOST:PORT (port 0..65535) on loopback unless --allow_non_loopback;
// --tls_cert and --tls_key come together; --client_ca,
// --tls_self_signed_dir and --tls_fault need/exclude the right others;
// --tls_fault is one of expired, not_yet_valid, wrong_host, untrusted_ca;
// the directories of --port_file and --journal exist and are writable;
// --max_scenario_depth and --max_scenario_bytes are positive;
// --shutdown_grace is 0..kMaxShutdownGrace. Errors name the flag.
absl::Status ValidateStandaloneConfig(const StandaloneConfig& config);

// True if `host` (from HOST:PORT; brackets allowed) is "localhost" or a
// loopback IPv4/IPv6 address.
bool IsLoopbackHost(const std::string& host);

// The --help text: every flag with its help and default.
std::string StandaloneUsage();

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_SERVER_FLAGS_H_
