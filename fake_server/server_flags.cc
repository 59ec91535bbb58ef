#include "fake_server/server_flags.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "fake_server/certificates.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "HOST:PORT to serve on; port 0 picks a free port. Loopback only "
          "unless --allow_non_loopback.");
ABSL_FLAG(std::string, port_file, "",
          "Write the bound port (decimal, newline) here once serving; "
          "written atomically (temp file + rename).");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain: serve TLS (with --tls_key).");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, client_ca, "",
          "PEM CA bundle: require and verify client certificates (mTLS). "
          "Needs --tls_cert/--tls_key or --tls_self_signed_dir.");
ABSL_FLAG(std::string, tls_self_signed_dir, "",
          "Mint a CA and a localhost certificate into this directory "
          "(ca.pem, server.pem, server.key) and serve TLS with them; clients "
          "trust ca.pem.");
ABSL_FLAG(std::string, tls_fault, "",
          "With --tls_self_signed_dir: serve a server certificate with this "
          "fault, to test that clients refuse it: expired, not_yet_valid, "
          "wrong_host (issued for wrong.example.com only) or untrusted_ca "
          "(signed by a CA other than the ca.pem written). ca.pem is still "
          "the CA clients should trust; all files are written 0600.");
ABSL_FLAG(std::vector<std::string>, scenario, {},
          "Scenario textproto file (workflows.fake.Scenario, see "
          "docs/scenarios.md). Repeatable: rules of later files are tried "
          "first; a later file's auth or job_progression replaces an "
          "earlier one, health is overridden per service.");
ABSL_FLAG(std::string, journal, "",
          "Write the call journal (textproto of workflows.fake.JournalDump) "
          "here on exit.");
ABSL_FLAG(int64_t, journal_max_calls, 100000,
          "Retain at most this many ended calls in the journal; older ones "
          "are dropped (counted in dropped_calls).");
ABSL_FLAG(int64_t, journal_max_bytes, int64_t{32} << 20,
          "Retain at most about this many bytes of calls in the journal; "
          "over it, the oldest call of the session holding the most bytes is "
          "dropped.");
ABSL_FLAG(int64_t, journal_max_value_bytes, int64_t{64} << 10,
          "Requests, responses, metadata values and status messages longer "
          "than this are journaled truncated, with their original size.");
ABSL_FLAG(int64_t, journal_max_sessions, 1024,
          "Track at most this many sessions (x-fake-session values) at once; "
          "a call starting one more is RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::vector<std::string>, sensitive_header, {},
          "Request metadata key whose values the journal keeps redacted "
          "(scheme and SHA-256 prefix), like authorization. Repeatable.");
ABSL_FLAG(int64_t, max_receive_message_bytes, int64_t{4} << 20,
          "Requests larger than this are RESOURCE_EXHAUSTED and journaled "
          "(gRPC's own limit is 4 MiB above it; larger ones are not seen).");
ABSL_FLAG(bool, log_calls, false, "Log one line per call to stderr.");
ABSL_FLAG(bool, allow_non_loopback, false,
          "Allow --listen on a non-loopback address.");
ABSL_FLAG(bool, allow_remote_control, false,
          "Serve the control service (workflows.fake.FakeControl) to "
          "non-loopback peers too.");
ABSL_FLAG(bool, simulated_clock, false,
          "Run the fake backend on a simulated clock that only moves with "
          "the control service's AdvanceClock.");
ABSL_FLAG(int32_t, max_scenario_depth, 100,
          "Deepest message nesting accepted in scenario text (--scenario "
          "files, LoadScenario, a rule's request_textproto); deeper is "
          "INVALID_ARGUMENT at the line and column where it was hit.");
ABSL_FLAG(int64_t, max_scenario_bytes, 1 << 20,
          "Largest scenario text accepted, in bytes (--scenario files, "
          "LoadScenario, a rule's request_textproto); larger is "
          "INVALID_ARGUMENT naming this limit.");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(3),
          "On SIGTERM/SIGINT, how long running calls may take to finish "
          "before they are cancelled (hung calls and streams end at once); "
          "0 to 1h. A second SIGTERM/SIGINT exits at once with 128+signal, "
          "without writing the journal.");
ABSL_FLAG(std::string, control_token_file, "",
          "File holding a bearer token (one line, at most 4096 bytes) that "
          "every control service call must send as \"authorization: Bearer "
          "<token>\"; the Workflows services are unaffected.");

namespace workflows {
namespace fake {
namespace {

constexpr const char* kFlagNames[] = {
    "listen",
    "port_file",
    "tls_cert",
    "tls_key",
    "client_ca",
    "tls_self_signed_dir",
    "tls_fault",
    "scenario",
    "journal",
    "journal_max_calls",
    "journal_max_bytes",
    "journal_max_value_bytes",
    "journal_max_sessions",
    "sensitive_header",
    "max_receive_message_bytes",
    "log_calls",
    "allow_non_loopback",
    "allow_remote_control",
    "simulated_clock",
    "max_scenario_depth",
    "max_scenario_bytes",
    "shutdown_grace",
    "control_token_file",
};

bool IsBoolFlag(absl::string_view name) {
  return name == "log_calls" || name == "allow_non_loopback" ||
         name == "allow_remote_control" || name == "simulated_clock";
}

bool IsKnownFlag(absl::string_view name) {
  for (const char* known : kFlagNames) {
    if (name == known) return true;
  }
  return false;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status CheckWritableDirectory(absl::string_view flag,
                                    const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  const std::string dir = DirectoryOf(path);
  if (access(dir.c_str(), W_OK | X_OK) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", path, ": directory \"", dir,
                     "\" is not writable: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<StandaloneConfig> ParseStandaloneFlags(int argc, char** argv) {
  std::vector<std::string> scenarios;
  std::vector<std::string> sensitive_headers;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "--helpfull") {
      StandaloneConfig config;
      config.help = true;
      return config;
    }
    if (!absl::StartsWith(arg, "-") || arg == "-" || arg == "--") {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument \"", arg,
                       "\": the server takes only flags (see --help)"));
    }
    arg.remove_prefix(absl::StartsWith(arg, "--") ? 2 : 1);
    std::string name(arg);
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); eq != absl::string_view::npos) {
      name = std::string(arg.substr(0, eq));
      value = std::string(arg.substr(eq + 1));
      has_value = true;
    }
    if (!IsKnownFlag(name) && absl::StartsWith(name, "no") &&
        IsBoolFlag(name.substr(2)) && !has_value) {
      name = name.substr(2);
      value = "false";
      has_value = true;
    }
    if (!IsKnownFlag(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", name, " (see --help for the flags)"));
    }
    if (!has_value) {
      if (IsBoolFlag(name)) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("flag --", name, " needs a value"));
      }
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    std::string error;
    if (flag == nullptr || !flag->ParseFrom(value, &error)) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", name, "=", value, ": ",
                       error.empty() ? "not a valid value" : error));
    }
    if (name == "sensitive_header") {
      for (const std::string& key : absl::GetFlag(FLAGS_sensitive_header)) {
        sensitive_headers.push_back(key);
      }
    }
    if (name == "scenario") {
      if (value.empty()) {
        return absl::InvalidArgumentError("flag --scenario needs a file name");
      }
      for (const std::string& file : absl::GetFlag(FLAGS_scenario)) {
        scenarios.push_back(file);
      }
    }
  }
  StandaloneConfig config;
  config.listen = absl::GetFlag(FLAGS_listen);
  config.port_file = absl::GetFlag(FLAGS_port_file);
  config.tls_cert = absl::GetFlag(FLAGS_tls_cert);
  config.tls_key = absl::GetFlag(FLAGS_tls_key);
  config.client_ca = absl::GetFlag(FLAGS_client_ca);
  config.tls_self_signed_dir = absl::GetFlag(FLAGS_tls_self_signed_dir);
  config.tls_fault = absl::GetFlag(FLAGS_tls_fault);
  config.scenarios = scenarios;
  config.journal = absl::GetFlag(FLAGS_journal);
  config.log_calls = absl::GetFlag(FLAGS_log_calls);
  config.journal_max_calls = absl::GetFlag(FLAGS_journal_max_calls);
  config.journal_max_bytes = absl::GetFlag(FLAGS_journal_max_bytes);
  config.journal_max_value_bytes = absl::GetFlag(FLAGS_journal_max_value_bytes);
  config.journal_max_sessions = absl::GetFlag(FLAGS_journal_max_sessions);
  config.sensitive_headers = sensitive_headers;
  config.max_receive_message_bytes =
      absl::GetFlag(FLAGS_max_receive_message_bytes);
  config.allow_non_loopback = absl::GetFlag(FLAGS_allow_non_loopback);
  config.allow_remote_control = absl::GetFlag(FLAGS_allow_remote_control);
  config.simulated_clock = absl::GetFlag(FLAGS_simulated_clock);
  config.parse_limits.max_depth = absl::GetFlag(FLAGS_max_scenario_depth);
  config.parse_limits.max_bytes = absl::GetFlag(FLAGS_max_scenario_bytes);
  config.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  config.control_token_file = absl::GetFlag(FLAGS_control_token_file);
  return config;
}

bool IsLoopbackHost(const std::string& host_in) {
  std::string host = host_in;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::Status ValidateStandaloneConfig(const StandaloneConfig& config) {
  const size_t colon = config.listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(config.listen).substr(colon + 1),
                        &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen=", config.listen,
        ": not HOST:PORT with a port 0..65535 (e.g. 127.0.0.1:0 or "
        "[::1]:8000)"));
  }
  const std::string host = config.listen.substr(0, colon);
  if (!config.allow_non_loopback && !IsLoopbackHost(host)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--listen=", config.listen, ": \"", host,
        "\" is not a loopback address; the fake server binds only to "
        "loopback unless --allow_non_loopback is given"));
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return absl::InvalidArgumentError(config.tls_cert.empty()
                                          ? "--tls_key needs --tls_cert"
                                          : "--tls_cert needs --tls_key");
  }
  if (!config.tls_self_signed_dir.empty() && !config.tls_cert.empty()) {
    return absl::InvalidArgumentError(
        "--tls_self_signed_dir and --tls_cert/--tls_key exclude each other");
  }
  if (!config.tls_fault.empty()) {
    absl::StatusOr<TlsFault> fault = ParseTlsFault(config.tls_fault);
    if (!fault.ok() || *fault == TlsFault::kNone) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tls_fault=", config.tls_fault,
          ": unknown fault; accepted values: expired, not_yet_valid, "
          "wrong_host, untrusted_ca"));
    }
    if (config.tls_self_signed_dir.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tls_fault=", config.tls_fault,
                       " needs --tls_self_signed_dir=DIR (the faulty "
                       "certificate is minted there, with the ca.pem clients "
                       "should trust)"));
    }
  }
  if (!config.client_ca.empty() && config.tls_cert.empty() &&
      config.tls_self_signed_dir.empty()) {
    return absl::InvalidArgumentError(
        "--client_ca needs TLS: add --tls_cert/--tls_key or "
        "--tls_self_signed_dir");
  }
  if (absl::Status s = ValidateTextParseLimits(config.parse_limits); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--", s.message()));
  }
  if (config.shutdown_grace < absl::ZeroDuration() ||
      config.shutdown_grace > kMaxShutdownGrace) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--shutdown_grace=", absl::FormatDuration(config.shutdown_grace),
        ": must be between 0s and ", absl::FormatDuration(kMaxShutdownGrace)));
  }
  struct Range {
    const char* flag;
    int64_t value, min, max;
  };
  for (const Range& range : {
           Range{"journal_max_calls", config.journal_max_calls, 0,
                 int64_t{100} << 20},
           Range{"journal_max_bytes", config.journal_max_bytes, 0,
                 int64_t{1} << 40},
           Range{"journal_max_value_bytes", config.journal_max_value_bytes, 64,
                 int64_t{1} << 30},
           Range{"journal_max_sessions", config.journal_max_sessions, 1,
                 int64_t{1} << 20},
           // Plus the 4 MiB margin, within gRPC's int limit.
           Range{"max_receive_message_bytes", config.max_receive_message_bytes,
                 0, int64_t{1} << 30},
       }) {
    if (range.value < range.min || range.value > range.max) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", range.flag, "=", range.value, ": must be in [",
                       range.min, ", ", range.max, "]"));
    }
  }
  for (const std::string& key : config.sensitive_headers) {
    if (key.empty() || key.find_first_of(" :=\t") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--sensitive_header=", key, ": not a metadata key (e.g. x-api-key)"));
    }
  }
  if (absl::Status s = CheckWritableDirectory("port_file", config.port_file);
      !s.ok()) {
    return s;
  }
  return CheckWritableDirectory("journal", config.journal);
}

std::string StandaloneUsage() {
  std::string usage =
      "usage: workflows_fake_server [flags]\n\n"
      "A fake Descartes Labs Workflows gRPC backend for tests and CI, with "
      "scenario files,\na control service (workflows.fake.FakeControl) and "
      "server reflection.\n\nflags:\n";
  for (const char* name : kFlagNames) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    absl::StrAppend(&usage, "  --", name, " (default \"", flag->DefaultValue(),
                    "\")\n      ", flag->Help(), "\n");
  }
  absl::StrAppend(&usage,
                  "\nExit codes: 0 after SIGINT/SIGTERM (journal written), 2 "
                  "for bad flags or files, 1 for other failures.\n");
  return usage;
}

}  // namespace fake
}  // namespace workflows
