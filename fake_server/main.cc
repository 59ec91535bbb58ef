// workflows_fake_server: the fake Workflows backend as a standalone process,
// for CI runs and clients in any language. See docs/scenarios.md and
// `workflows_fake_server --help`.
//
//   workflows_fake_server --listen=127.0.0.1:0 --port_file=/tmp/port
//       --scenario=fake_server/scenarios/flaky_unavailable.textproto
//       --journal=/tmp/journal.textproto
//
// Exit codes: 0 after SIGINT/SIGTERM (graceful: in-flight calls end, the
// journal is written), 2 for bad flags or files, 1 for other failures.

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/call_logger.h"
#include "fake_server/certificates.h"
#include "fake_server/control_service.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/scenario_loader.h"
#include "fake_server/server_flags.h"

namespace workflows {
namespace fake {
namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
// At shutdown, hung calls and open streams end at once (the fake's shutdown
// signal); calls still running after this grace are cancelled. gRPC's
// shutdown also waits out the grace whenever a client keeps an idle
// connection open, so it is short: a fake's calls take microseconds.
constexpr absl::Duration kShutdownGrace = absl::Milliseconds(100);

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

// Writes `contents` to `path` via a temporary file and rename(), so that a
// reader never sees a partial file.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::string& contents) {
  const std::string temp = absl::StrCat(path, ".tmp.", getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << contents;
    out.close();
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("cannot write \"", temp, "\""));
    }
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    std::remove(temp.c_str());
    return absl::UnavailableError(
        absl::StrCat("cannot rename \"", temp, "\" to \"", path, "\""));
  }
  return absl::OkStatus();
}

TlsServerOptions LoadTlsOrDie(const StandaloneConfig& config) {
  TlsServerOptions tls;
  if (!config.tls_self_signed_dir.empty()) {
    absl::Status minted = WriteSelfSignedBundle(config.tls_self_signed_dir);
    if (!minted.ok()) {
      Fail(kExitUsage,
           absl::StrCat("--tls_self_signed_dir=", config.tls_self_signed_dir,
                        ": ", minted.message()));
    }
    const std::string dir = config.tls_self_signed_dir;
    tls.cert_pem = ReadFileOrDie("tls_self_signed_dir", dir + "/server.pem");
    tls.key_pem = ReadFileOrDie("tls_self_signed_dir", dir + "/server.key");
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

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  ControlService control(
      {.allow_remote = config.allow_remote_control, .clock = simulated});
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
      "workflows_fake_server: serving on %s (%s)%s%s; control service "
      "workflows.fake.FakeControl%s; reflection on\n",
      server->address(),
      !tls ? "plaintext"
           : (config.client_ca.empty() ? "TLS"
                                       : "mTLS, client certificates "
                                         "required"),
      config.scenarios.empty() ? "" : "; scenario ",
      config.scenarios.empty() ? "" : scenario.name(),
      config.simulated_clock ? "; simulated clock" : "");
  std::fflush(stdout);
  // The port file is the "ready" signal scripts wait for, so it comes last:
  // by then the banner above is on stdout for whoever reads it.
  if (!config.port_file.empty()) {
    absl::Status written = WriteFileAtomically(
        config.port_file, absl::StrCat(server->port(), "\n"));
    if (!written.ok()) {
      Fail(kExitFailure, absl::StrCat("--port_file=", config.port_file, ": ",
                                      written.message()));
    }
  }

  int signal_number = 0;
  while (sigwait(&shutdown_signals, &signal_number) != 0) {
  }
  absl::FPrintF(stderr, "workflows_fake_server: %s, shutting down\n",
                signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  server->Shutdown(kShutdownGrace);
  control.Detach();

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
