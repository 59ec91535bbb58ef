#include "fake_server/fake_workflows_server.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <optional>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "fake_server/certificates.h"
#include "fake_server/job_progression.h"
#include "fake_server/seed.h"

namespace workflows {
namespace fake {
namespace {

using ::grpc::health::v1::HealthCheckResponse;
using ::grpc::health::v1::HealthCheckResponse_ServingStatus_Parse;

const char* TransportName(Transport transport) {
  switch (transport) {
    case Transport::kInProcess:
      return "in-process";
    case Transport::kInsecureTcp:
      return "insecure TCP";
    case Transport::kTls:
      return "TLS";
    case Transport::kLocal:
      return "local credentials";
  }
  return "unknown";
}

// Splits "host:port" / "[v6]:port"; the port must be a number 0..65535.
absl::Status SplitAddress(const std::string& address, std::string* host,
                          int* port) {
  const size_t colon = address.rfind(':');
  int parsed = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(absl::string_view(address).substr(colon + 1),
                        &parsed) ||
      parsed < 0 || parsed > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FakeServerOptions.address \"", address,
        "\" is not host:port (e.g. \"127.0.0.1:0\" or \"[::1]:0\")"));
  }
  *host = address.substr(0, colon);
  *port = parsed;
  return absl::OkStatus();
}

// Clients cannot dial a wildcard address; dial loopback instead.
std::string DialableHost(const std::string& host) {
  if (host == "0.0.0.0") return "127.0.0.1";
  if (host == "[::]" || host == "::") return "[::1]";
  return host;
}

absl::Status ValidateTls(const TlsServerOptions& tls) {
  if (tls.cert_pem.empty() || tls.key_pem.empty()) {
    return absl::InvalidArgumentError(
        "Transport::kTls needs FakeServerOptions.tls.cert_pem and "
        "tls.key_pem (PEM)");
  }
  absl::Status pair = ValidateCertificateAndKey({tls.cert_pem, tls.key_pem});
  if (!pair.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FakeServerOptions.tls.cert_pem/key_pem: ", pair.message()));
  }
  if (!tls.client_ca_pem.empty()) {
    absl::StatusOr<int> count = CountCertificates(tls.client_ca_pem);
    if (!count.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "FakeServerOptions.tls.client_ca_pem: ", count.status().message()));
    }
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(
    const FakeServerOptions& options) {
  switch (options.transport) {
    case Transport::kTls: {
      const bool mtls = !options.tls.client_ca_pem.empty();
      grpc::SslServerCredentialsOptions ssl(
          mtls ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
               : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      ssl.pem_root_certs = options.tls.client_ca_pem;
      ssl.pem_key_cert_pairs.push_back(
          {options.tls.key_pem, options.tls.cert_pem});
      return grpc::SslServerCredentials(ssl);
    }
    case Transport::kLocal:
      return grpc::experimental::LocalServerCredentials(LOCAL_TCP);
    default:
      return grpc::InsecureServerCredentials();
  }
}

// The backend's JobProgression for a scenario's JobPlan, validated.
absl::StatusOr<JobProgression> ToJobProgression(const JobPlan& plan) {
  namespace dw = ::descarteslabs::workflows;
  JobProgression progression;
  if (plan.has_stage_duration()) {
    progression.stage_duration =
        absl::Seconds(plan.stage_duration().seconds()) +
        absl::Nanoseconds(plan.stage_duration().nanos());
    // Zero is instant: the job runs to its end as soon as it is created.
    if (progression.stage_duration < absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          "job_progression.stage_duration must not be negative");
    }
  }
  switch (plan.final_stage()) {
    case dw::Job::UNSPECIFIED:
    case dw::Job::SUCCEEDED:
      return progression;
    case dw::Job::FAILED:
      break;
    case dw::Job::CANCELLED:
      if (plan.error_code() != dw::ERROR_NONE ||
          !plan.error_message().empty()) {
        return absl::InvalidArgumentError(
            "job_progression.error_code and error_message apply to FAILED "
            "only; a CANCELLED job has no error");
      }
      progression.end_stage = dw::Job::CANCELLED;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "job_progression.final_stage must be SUCCEEDED, FAILED or "
          "CANCELLED, not ",
          dw::Job::Stage_Name(plan.final_stage())));
  }
  progression.fail_in_stage = plan.fail_at_stage() == dw::Job::UNSPECIFIED
                                  ? dw::Job::RUNNING
                                  : plan.fail_at_stage();
  if (progression.fail_in_stage != dw::Job::QUEUED &&
      progression.fail_in_stage != dw::Job::PREPARING &&
      progression.fail_in_stage != dw::Job::RUNNING &&
      progression.fail_in_stage != dw::Job::SAVING) {
    return absl::InvalidArgumentError(absl::StrCat(
        "job_progression.fail_at_stage must be QUEUED, PREPARING, RUNNING or "
        "SAVING, not ",
        dw::Job::Stage_Name(plan.fail_at_stage())));
  }
  progression.error_code = plan.error_code();
  if (!plan.error_message().empty()) {
    progression.error_message = plan.error_message();
  }
  return progression;
}

}  // namespace

FakeWorkflowsServer::FakeWorkflowsServer(FakeServerOptions options)
    : transport_(options.transport),
      clock_(options.clock != nullptr ? options.clock : Clock::Real()),
      health_(std::make_shared<HealthState>()),
      script_(options.random_seed),
      journal_(options.journal) {
  if (options.backend != nullptr) {
    backend_ = std::move(options.backend);
  } else {
    InMemoryBackend::Options in_memory;
    in_memory.clock = clock_;
    in_memory.health = health_;
    in_memory_ = std::make_shared<InMemoryBackend>(std::move(in_memory));
    backend_ = in_memory_;
    if (options.wrap_backend) backend_ = options.wrap_backend(backend_);
  }
  core_.backend = backend_.get();
  core_.script = &script_;
  core_.journal = &journal_;
  core_.clock = clock_.get();
  core_.shutdown = &shutdown_signal_;
  // Only in-process channels reach an in-process server; a listening server
  // also takes in-process channels, whose identity differs from its port's.
  core_.fixed_transport_identity = transport_ == Transport::kInProcess;
  if (options.max_receive_message_size >= 0) {
    core_.max_request_bytes =
        static_cast<size_t>(options.max_receive_message_size);
  }
  services_ = MakeServiceAdapters(&core_);
}

absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> FakeWorkflowsServer::Start(
    FakeServerOptions options) {
  const bool listens = options.transport != Transport::kInProcess;
  std::string host;
  int requested_port = 0;
  const bool unix_socket = absl::StartsWith(options.address, "unix:");
  if (listens && !unix_socket) {
    absl::Status address =
        SplitAddress(options.address, &host, &requested_port);
    if (!address.ok()) return address;
  }
  if (options.transport == Transport::kTls) {
    absl::Status tls = ValidateTls(options.tls);
    if (!tls.ok()) return tls;
  } else if (!options.tls.cert_pem.empty() || !options.tls.key_pem.empty() ||
             !options.tls.client_ca_pem.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("FakeServerOptions.tls is set but the transport is ",
                     TransportName(options.transport), ", not kTls"));
  }

  const std::string requested_address = options.address;
  std::shared_ptr<grpc::ServerCredentials> credentials =
      ServerCredentials(options);
  grpc::ServerBuilder builder;
  // Fail on a port in use instead of silently sharing it with another
  // server.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  {
    const int64_t own_limit = options.max_receive_message_size >= 0
                                  ? options.max_receive_message_size
                                  : int64_t{4} << 20;
    builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<int64_t>(
        own_limit + kReceiveLimitMargin, std::numeric_limits<int>::max())));
  }
  if (options.max_send_message_size >= 0) {
    builder.SetMaxSendMessageSize(options.max_send_message_size);
  }
  int selected_port = 0;
  if (listens) {
    builder.AddListeningPort(requested_address, credentials, &selected_port);
  }
  const auto configure_builder = options.configure_builder;
  auto server = absl::WrapUnique(new FakeWorkflowsServer(std::move(options)));
  for (const auto& service : server->services_) {
    builder.RegisterService(service.get());
  }
  if (configure_builder) configure_builder(builder);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || (listens && selected_port == 0)) {
    server->Shutdown(absl::ZeroDuration());
    return absl::UnavailableError(absl::StrCat(
        "the fake Workflows server could not listen on \"", requested_address,
        "\" (", TransportName(server->transport_),
        "): the port is in use or the host is not a local address"));
  }
  if (listens) {
    if (unix_socket) {
      server->address_ = requested_address;
    } else {
      server->port_ = selected_port;
      server->address_ = absl::StrCat(DialableHost(host), ":", selected_port);
    }
  }
  return server;
}

FakeWorkflowsServer::~FakeWorkflowsServer() { Shutdown(); }

std::shared_ptr<grpc::Channel> FakeWorkflowsServer::InProcessChannel(
    const grpc::ChannelArguments& arguments) const {
  return server_->InProcessChannel(arguments);
}

std::shared_ptr<grpc::Channel> FakeWorkflowsServer::CreateChannel(
    const ChannelOptions& options) const {
  grpc::ChannelArguments arguments = options.arguments;
  switch (transport_) {
    case Transport::kInProcess:
      return InProcessChannel(arguments);
    case Transport::kInsecureTcp:
      return grpc::CreateCustomChannel(
          address_, grpc::InsecureChannelCredentials(), arguments);
    case Transport::kTls: {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = options.root_pem;
      ssl.pem_cert_chain = options.client_cert_pem;
      ssl.pem_private_key = options.client_key_pem;
      if (!options.target_name_override.empty()) {
        arguments.SetSslTargetNameOverride(options.target_name_override);
      }
      return grpc::CreateCustomChannel(address_, grpc::SslCredentials(ssl),
                                       arguments);
    }
    case Transport::kLocal:
      return grpc::CreateCustomChannel(
          address_, grpc::experimental::LocalCredentials(LOCAL_TCP), arguments);
  }
  return nullptr;
}

absl::Status FakeWorkflowsServer::LoadScenario(const Scenario& scenario) {
  const std::string where =
      scenario.name().empty()
          ? "scenario"
          : absl::StrCat("scenario \"", scenario.name(), "\"");
  // Validate everything before changing anything.
  std::vector<std::pair<std::string, HealthState::ServingStatus>> health;
  for (const HealthEntry& entry : scenario.health()) {
    HealthCheckResponse::ServingStatus status;
    if (!HealthCheckResponse_ServingStatus_Parse(entry.status(), &status) ||
        status == HealthCheckResponse::SERVICE_UNKNOWN) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": health status \"", entry.status(), "\" of service \"",
          entry.service(), "\" is not UNKNOWN, SERVING or NOT_SERVING"));
    }
    health.emplace_back(entry.service(), status);
  }
  std::optional<JobProgression> progression;
  if (scenario.has_job_progression()) {
    absl::StatusOr<JobProgression> converted =
        ToJobProgression(scenario.job_progression());
    if (!converted.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", converted.status().message()));
    }
    progression = *std::move(converted);
  }
  const bool touches_backend =
      !SeedIsEmpty(scenario.seed()) || progression.has_value();
  if (touches_backend) {
    if (in_memory_ == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          where,
          ": seed and job_progression need the in-memory backend, but this "
          "server has a custom backend"));
    }
    const std::vector<SeedProblem> problems = CheckSeed(scenario.seed());
    if (!problems.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", problems.front().ToString()));
    }
  }
  // Script::Load is itself all or nothing, and is the last step that can
  // fail.
  absl::Status loaded = script_.Load(scenario);
  if (!loaded.ok()) {
    return absl::Status(loaded.code(),
                        absl::StrCat(where, ": ", loaded.message()));
  }
  for (const auto& [service, status] : health) {
    health_->SetStatus(service, status);
  }
  if (touches_backend) {
    // Seeded jobs follow the scenario's progression.
    if (progression.has_value()) {
      in_memory_->SetDefaultJobProgression(*std::move(progression));
    }
    ApplySeed(scenario.seed(), in_memory_.get());  // Validated above.
  }
  return absl::OkStatus();
}

void FakeWorkflowsServer::Reset() {
  script_.Clear();
  journal_.Clear();
  if (in_memory_ != nullptr) in_memory_->Reset();
  health_->Reset();
}

void FakeWorkflowsServer::ResetSession(absl::string_view session) {
  script_.ClearSession(session);
  journal_.ClearSession(session);
}

void FakeWorkflowsServer::SetHealth(absl::string_view service,
                                    HealthCheckResponse::ServingStatus status) {
  health_->SetStatus(service, status);
}

void FakeWorkflowsServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&shutdown_mu_);
    if (shutdown_state_ != ShutdownState::kServing) {
      // Another thread is shutting down: return once it is done, as if this
      // call had done it.
      shutdown_mu_.Await(absl::Condition(
          +[](ShutdownState* state) { return *state == ShutdownState::kDone; },
          &shutdown_state_));
      return;
    }
    shutdown_state_ = ShutdownState::kShuttingDown;
  }
  // Wake hung calls and blocked streams first, so that gRPC's shutdown finds
  // handlers already returning instead of waiting out `grace`.
  shutdown_signal_.Trigger();
  health_->Shutdown();
  if (in_memory_ != nullptr) in_memory_->WakeAll();
  if (server_ != nullptr) {
    // gRPC stops accepting, waits up to `grace` for running calls, then
    // cancels the rest; Wait() returns once every handler has returned.
    server_->Shutdown(
        std::chrono::system_clock::now() +
        absl::ToChronoNanoseconds(std::max(grace, absl::ZeroDuration())));
    server_->Wait();
  }
  absl::MutexLock lock(&shutdown_mu_);
  shutdown_state_ = ShutdownState::kDone;
}

bool FakeWorkflowsServer::is_shut_down() const {
  absl::MutexLock lock(&shutdown_mu_);
  return shutdown_state_ != ShutdownState::kServing;
}

}  // namespace fake
}  // namespace workflows
