// workflows_fake_server: the fake Workflows backend as a standalone process,
// for CI runs and clients in any language. See docs/scenarios.md and
// `workflows_fake_server --help`.
//
//   workflows_fake_server --listen=127.0.0.1:0 --port_file=/tmp/port
//       --scenario=fake_server/scenarios/flaky_unavailable.textproto
//       --journal=/tmp/journal.textproto
//
// Exit codes: 0 after SIGINT/SIGTERM (graceful: running calls get
// --shutdown_grace to finish, then are cancelled; the journal is written),
// 128+signal after a second SIGINT/SIGTERM (at once, no journal), 2 for bad
// flags or files, 1 for other failures (including a shutdown that overruns
// the grace by kStopLimit).

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <openssl/crypto.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>  // NOLINT: the signal-watching thread.
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/call_logger.h"
#include "fake_server/certificates.h"
#include "fake_server/control_service.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/private_file.h"
#include "fake_server/scenario_loader.h"
#include "fake_server/server_flags.h"
#include "fake_server/text_limits.h"

namespace workflows {
namespace fake {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// Beyond --shutdown_grace, what cancelling the last calls may take before
// the process gives up and exits anyway: a handler that never returns must
// not keep a shared CI host's fake alive. Writing the journal afterwards is
// not bounded by it (its size is bounded by the journal's budget), so a slow
// write on a loaded machine does not lose the journal.
constexpr absl::Duration kStopLimit = absl::Seconds(10);
// The control token is one header value.
constexpr size_t kMaxControlTokenBytes = 4096;

void Fail(int code, absl::string_view message) {
  absl::FPrintF(stderr, "workflows_fake_server: %s\n", message);
  std::exit(code);
}

// Reads a whole file; errors name the flag and the file.
std::string ReadFileOrDie(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Fail(kExitUsage,
         absl::StrCat("--", flag, "=", path, ": cannot read the file"));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

TlsServerOptions LoadTlsOrDie(const StandaloneConfig& config) {
  TlsServerOptions tls;
  if (!config.tls_self_signed_dir.empty()) {
    TlsFault fault = TlsFault::kNone;
    if (!config.tls_fault.empty()) {
      // Checked by ValidateStandaloneConfig.
      fault = ParseTlsFault(config.tls_fault).value_or(TlsFault::kNone);
    }
    absl::StatusOr<SelfSignedBundle> minted =
        WriteSelfSignedBundle(config.tls_self_signed_dir, fault);
    if (!minted.ok()) {
      Fail(kExitUsage,
           absl::StrCat("--tls_self_signed_dir=", config.tls_self_signed_dir,
                        ": ", minted.status().message()));
    }
    // Served from memory: what is on disk now may already be someone else's.
    tls.cert_pem = std::move(minted->server.cert_pem);
    tls.key_pem = std::move(minted->server.key_pem);
  } else {
    tls.cert_pem = ReadFileOrDie("tls_cert", config.tls_cert);
    tls.key_pem = ReadFileOrDie("tls_key", config.tls_key);
    absl::StatusOr<int> certs = CountCertificates(tls.cert_pem);
    if (!certs.ok()) {
      Fail(kExitUsage, absl::StrCat("--tls_cert=", config.tls_cert, ": ",
                                    certs.status().message()));
    }
    absl::Status key = ValidatePrivateKey(tls.key_pem);
    if (!key.ok()) {
      Fail(kExitUsage,
           absl::StrCat("--tls_key=", config.tls_key, ": ", key.message()));
    }
    absl::Status pair = ValidateCertificateAndKey({tls.cert_pem, tls.key_pem});
    if (!pair.ok()) {
      Fail(kExitUsage,
           absl::StrCat("--tls_cert=", config.tls_cert,
                        " --tls_key=", config.tls_key, ": ", pair.message()));
    }
  }
  if (!config.client_ca.empty()) {
    tls.client_ca_pem = ReadFileOrDie("client_ca", config.client_ca);
    absl::StatusOr<int> cas = CountCertificates(tls.client_ca_pem);
    if (!cas.ok()) {
      Fail(kExitUsage, absl::StrCat("--client_ca=", config.client_ca, ": ",
                                    cas.status().message()));
    }
  }
  return tls;
}

// All --scenario files combined in order by MergeScenarios (later files'
// rules tried first, their auth and job_progression replacing earlier ones,
// health overridden per service), so that loading is one all-or-nothing
// step.
Scenario LoadScenariosOrDie(const StandaloneConfig& config) {
  std::vector<Scenario> scenarios;
  for (const std::string& path : config.scenarios) {
    absl::StatusOr<Scenario> scenario = LoadScenarioFile(path);
    if (!scenario.ok()) {
      Fail(kExitUsage, absl::StrCat("--scenario=", path, ": ",
                                    scenario.status().message()));
    }
    // Unnamed files are shown by file name.
    if (scenario->name().empty()) {
      scenario->set_name(path.substr(path.rfind('/') + 1));
    }
    scenarios.push_back(*std::move(scenario));
  }
  return MergeScenarios(scenarios);
}

// Runs on its own thread with SIGINT/SIGTERM blocked in every thread, so no
// signal handler ever runs: the first signal is handed to `first` (the main
// thread then shuts down gracefully); a second one, or a server shutdown
// (`server_stopped` not yet set) still running `grace` + kStopLimit later,
// ends the process at once.
void WatchSignals(sigset_t signals, absl::Duration grace,
                  std::atomic<int>* first_signal, absl::Notification* first,
                  const std::atomic<bool>* server_stopped) {
  int signal_number = 0;
  while (sigwait(&signals, &signal_number) != 0) {
  }
  first_signal->store(signal_number);
  first->Notify();
  const absl::Time give_up = absl::Now() + grace + kStopLimit;
  for (;;) {
    const timespec timeout =
        absl::ToTimespec(std::max(give_up - absl::Now(), absl::ZeroDuration()));
    const int again = sigtimedwait(&signals, nullptr, &timeout);
    if (again > 0) {
      absl::FPrintF(stderr,
                    "workflows_fake_server: second %s, exiting at once "
                    "(the journal is not written)\n",
                    again == SIGINT ? "SIGINT" : "SIGTERM");
      std::fflush(stderr);
      _exit(128 + again);
    }
    if (errno == EAGAIN && server_stopped->load()) {
      // Only the journal is left to write: from here on, just a second
      // signal ends the process early.
      while (sigwait(&signals, &signal_number) != 0) {
      }
      absl::FPrintF(stderr,
                    "workflows_fake_server: second %s, exiting at once "
                    "(the journal is not written)\n",
                    signal_number == SIGINT ? "SIGINT" : "SIGTERM");
      std::fflush(stderr);
      _exit(128 + signal_number);
    }
    if (errno == EAGAIN) {
      absl::FPrintF(stderr,
                    "workflows_fake_server: shutdown still running %s after "
                    "the signal (--shutdown_grace=%s plus %s); exiting "
                    "without the journal\n",
                    absl::FormatDuration(grace + kStopLimit),
                    absl::FormatDuration(grace),
                    absl::FormatDuration(kStopLimit));
      std::fflush(stderr);
      _exit(kExitFailure);
    }
    // EINTR: wait again for what is left.
  }
}

// The SHA-256 of the token in --control_token_file: one line of visible
// ASCII (a trailing newline is allowed). Errors never show the token.
std::string ReadControlTokenOrDie(const std::string& path) {
  std::string token = ReadFileOrDie("control_token_file", path);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) {
    token.pop_back();
  }
  const auto fail = [&](absl::string_view problem) {
    OPENSSL_cleanse(token.data(), token.size());
    Fail(kExitUsage,
         absl::StrCat("--control_token_file=", path, ": ", problem));
  };
  if (token.empty()) fail("the file is empty; it must hold the token");
  if (token.size() > kMaxControlTokenBytes) {
    fail(absl::StrCat("the token is ", token.size(), " bytes; the limit is ",
                      kMaxControlTokenBytes));
  }
  for (size_t i = 0; i < token.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (c <= ' ' || c >= 0x7f) {
      fail(absl::StrCat("byte ", i + 1,
                        " of the token is not visible ASCII (one line, no "
                        "spaces: it is sent as a header value)"));
    }
  }
  std::string digest = ControlService::HashToken(token);
  OPENSSL_cleanse(token.data(), token.size());
  return digest;
}

int Run(int argc, char** argv) {
  // Block the shutdown signals in every thread (gRPC's threads inherit the
  // mask), so that only sigwait() below receives them: no work in a signal
  // handler.
  sigset_t shutdown_signals;
  sigemptyset(&shutdown_signals);
  sigaddset(&shutdown_signals, SIGINT);
  sigaddset(&shutdown_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<StandaloneConfig> parsed = ParseStandaloneFlags(argc, argv);
  if (!parsed.ok()) Fail(kExitUsage, parsed.status().message());
  const StandaloneConfig& config = *parsed;
  if (config.help) {
    absl::FPrintF(stdout, "%s", StandaloneUsage());
    return 0;
  }
  if (absl::Status valid = ValidateStandaloneConfig(config); !valid.ok()) {
    Fail(kExitUsage, valid.message());
  }
  // Every scenario text parsed from here on (files, LoadScenario, rules'
  // request_textproto) uses the flags' limits.
  SetDefaultTextParseLimits(config.parse_limits);

  // From here on a signal means "shut down"; until the server is up it just
  // waits in the mask.
  std::atomic<int> signal_received{0};
  absl::Notification first_signal;
  // Static: the detached watcher may still read it while main returns.
  static std::atomic<bool> server_stopped{false};
  std::thread(WatchSignals, shutdown_signals, config.shutdown_grace,
              &signal_received, &first_signal, &server_stopped)
      .detach();

  FakeServerOptions options;
  options.address = config.listen;
  options.journal.max_calls = static_cast<size_t>(config.journal_max_calls);
  options.journal.max_bytes = static_cast<size_t>(config.journal_max_bytes);
  options.journal.max_value_bytes =
      static_cast<size_t>(config.journal_max_value_bytes);
  options.journal.max_sessions =
      static_cast<size_t>(config.journal_max_sessions);
  options.journal.sensitive_headers = config.sensitive_headers;
  options.max_receive_message_size =
      static_cast<int>(config.max_receive_message_bytes);
  const bool tls =
      !config.tls_cert.empty() || !config.tls_self_signed_dir.empty();
  if (tls) {
    options.transport = Transport::kTls;
    options.tls = LoadTlsOrDie(config);
  }
  std::shared_ptr<SimulatedClock> simulated;
  if (config.simulated_clock) {
    simulated = std::make_shared<SimulatedClock>(absl::Now());
    options.clock = simulated;
  }
  const Scenario scenario = LoadScenariosOrDie(config);

  std::string control_token_sha256;
  if (!config.control_token_file.empty()) {
    control_token_sha256 = ReadControlTokenOrDie(config.control_token_file);
  }

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  ControlService control({.allow_remote = config.allow_remote_control,
                          .clock = simulated,
                          .bearer_token_sha256 = control_token_sha256});
  options.configure_builder = [&](grpc::ServerBuilder& builder) {
    builder.RegisterService(&control);
    if (config.log_calls) {
      std::vector<std::unique_ptr<
          grpc::experimental::ServerInterceptorFactoryInterface>>
          creators;
      creators.push_back(std::make_unique<CallLoggerFactory>(stderr));
      builder.experimental().SetInterceptorCreators(std::move(creators));
    }
  };
  absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> started =
      FakeWorkflowsServer::Start(std::move(options));
  if (!started.ok()) {
    Fail(kExitUsage, absl::StrCat("--listen=", config.listen, ": ",
                                  started.status().message()));
  }
  std::unique_ptr<FakeWorkflowsServer> server = *std::move(started);
  if (!config.scenarios.empty()) {
    absl::Status loaded = server->LoadScenario(scenario);
    if (!loaded.ok()) {
      Fail(kExitUsage,
           absl::StrCat("--scenario=", absl::StrJoin(config.scenarios, ","),
                        ": ", loaded.message()));
    }
  }
  control.Attach(server.get());

  absl::FPrintF(
      stdout,
      "workflows_fake_server: serving on %s (%s%s)%s%s; control service "
      "workflows.fake.FakeControl%s%s; reflection on\n",
      server->address(),
      !tls ? "plaintext"
           : (config.client_ca.empty() ? "TLS"
                                       : "mTLS, client certificates "
                                         "required"),
      config.tls_fault.empty()
          ? ""
          : absl::StrCat(", faulty certificate: ", config.tls_fault),
      config.scenarios.empty() ? "" : "; scenario ",
      config.scenarios.empty() ? "" : scenario.name(),
      config.control_token_file.empty() ? "" : " (bearer token required)",
      config.simulated_clock ? "; simulated clock" : "");
  std::fflush(stdout);
  // The port file is the "ready" signal scripts wait for, so it comes last:
  // by then the banner above is on stdout for whoever reads it.
  if (!config.port_file.empty()) {
    absl::Status written = WriteFileAtomically(
        config.port_file, absl::StrCat(server->port(), "\n"), 0644);
    if (!written.ok()) {
      Fail(kExitFailure, absl::StrCat("--port_file=", config.port_file, ": ",
                                      written.message()));
    }
  }

  first_signal.WaitForNotification();
  const int signal_number = signal_received.load();
  absl::FPrintF(stderr,
                "workflows_fake_server: %s, shutting down (running calls "
                "have %s)\n",
                signal_number == SIGINT ? "SIGINT" : "SIGTERM",
                absl::FormatDuration(config.shutdown_grace));
  server->Shutdown(config.shutdown_grace);
  control.Detach();
  server_stopped.store(true);

  int exit_code = 0;
  if (!config.journal.empty()) {
    absl::Status written =
        WriteFileAtomically(config.journal, server->journal().ToTextProto());
    if (!written.ok()) {
      absl::FPrintF(stderr, "workflows_fake_server: --journal=%s: %s\n",
                    config.journal, written.message());
      exit_code = kExitFailure;
    }
  }
  return exit_code;
}

}  // namespace
}  // namespace fake
}  // namespace workflows

int main(int argc, char** argv) { return workflows::fake::Run(argc, argv); }
