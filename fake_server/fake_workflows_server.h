#ifndef WORKFLOWS_FAKE_SERVER_FAKE_WORKFLOWS_SERVER_H_
#define WORKFLOWS_FAKE_SERVER_FAKE_WORKFLOWS_SERVER_H_

#include <grpcpp/channel.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/channel_arguments.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/backend.h"
#include "fake_server/health_state.h"
#include "fake_server/in_memory_backend.h"
#include "fake_server/journal.h"
#include "fake_server/scenario.pb.h"
#include "fake_server/script.h"
#include "fake_server/server_call_context.h"
#include "fake_server/service_adapters.h"
#include "fake_server/session.h"

namespace workflows {
namespace fake {

// How clients reach a FakeWorkflowsServer.
enum class Transport {
  // No port at all; only InProcessChannel(). Fastest; but gRPC never sends
  // call credentials over it and its retry policy does not run.
  kInProcess,
  // Plaintext TCP on `address` (default "127.0.0.1:0": a free port).
  kInsecureTcp,
  // TLS on `address` with `tls.cert_pem`/`tls.key_pem`; mTLS when
  // `tls.client_ca_pem` is set.
  kTls,
  // grpc::experimental::LocalServerCredentials(LOCAL_TCP) on `address`:
  // plaintext on loopback that gRPC treats as secure, so call credentials
  // (bearer tokens) are sent without certificates.
  kLocal,
};

struct TlsServerOptions {
  // PEM certificate chain and private key of the server.
  std::string cert_pem;
  std::string key_pem;
  // If set, clients must present a certificate signed by one of these CAs
  // (mTLS); the server verifies it.
  std::string client_ca_pem;
};

// How far above FakeServerOptions::max_receive_message_size gRPC's receive
// limit is set, so that oversize requests reach the fake and its journal.
inline constexpr int kReceiveLimitMargin = 4 << 20;

struct FakeServerOptions {
  Transport transport = Transport::kInsecureTcp;
  // host:port to listen on for every transport but kInProcess. Port 0 picks
  // a free port; address() reports the bound one.
  std::string address = "127.0.0.1:0";
  TlsServerOptions tls;

  // Answers unscripted calls. Default: an InMemoryBackend using `clock` and
  // the server's HealthState.
  std::shared_ptr<Backend> backend;
  // Decorates the default in-memory backend: called once with it, the result
  // answers unscripted calls while in_memory_backend(), LoadScenario seeds
  // and health keep working. The test kit wraps it in a MockWorkflowsBackend
  // that falls through to it. Ignored when `backend` is set.
  std::function<std::shared_ptr<Backend>(std::shared_ptr<Backend> in_memory)>
      wrap_backend;
  // Called with the grpc::ServerBuilder just before the server starts, to
  // register extra services (a control service, reflection) or interceptors.
  std::function<void(grpc::ServerBuilder&)> configure_builder;
  // Drives the journal's timestamps and the default backend. Default:
  // Clock::Real().
  std::shared_ptr<Clock> clock;
  // Seeds probability rules of the script.
  uint64_t random_seed = 0;

  JournalOptions journal;

  // Requests larger than this many bytes (-1: 4 MiB, gRPC's default) end in
  // RESOURCE_EXHAUSTED and are journaled (payload truncated). The fake
  // enforces it itself: gRPC's own receive limit is set kReceiveLimitMargin
  // above it, and only requests past that never reach the fake (nor its
  // journal).
  int max_receive_message_size = -1;
  // Response size limit in bytes (-1: gRPC's default).
  int max_send_message_size = -1;
};

// How CreateChannel() connects to the server.
struct ChannelOptions {
  // TLS: trusted roots (PEM) for the server's certificate; required for kTls.
  std::string root_pem;
  // TLS: the name the server certificate is checked against, if not the
  // host of address() (e.g. "localhost" when dialling 127.0.0.1).
  std::string target_name_override;
  // mTLS: the client's certificate chain and private key.
  std::string client_cert_pem;
  std::string client_key_pem;
  // Extra channel arguments (service config, keepalive, ...).
  grpc::ChannelArguments arguments;
};

// FakeWorkflowsServer is a real gRPC server that speaks the Workflows API
// (WorkflowAPI, JobAPI, XYZAPI, AccessGrantApi) and grpc.health.v1, for tests
// of code that talks to Workflows. Unscripted calls go to a realistic
// in-memory backend; the script makes any RPC fail, delay, hang, expire or
// stream something else; the journal records every call. Many servers can run
// in one process; nothing is global.
//
//   auto server = FakeWorkflowsServer::Start({}).value();   // 127.0.0.1:0
//   Rule rule;
//   rule.set_method("GetJob");
//   rule.set_fail_times(2);
//   rule.mutable_behavior_on_fail()->mutable_fail()->set_code("UNAVAILABLE");
//   ASSERT_TRUE(server->script().AddRule(rule).ok());
//   auto stub = JobAPI::NewStub(server->CreateChannel());
//   ...
//   ASSERT_TRUE(server->journal().WaitForCalls("GetJob", 3, absl::Seconds(5))
//                   .ok());
class FakeWorkflowsServer {
 public:
  // Starts serving. Bad options (unparsable PEM, bad address, port in use)
  // are errors naming the problem.
  static absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> Start(
      FakeServerOptions options = {});

  // Shuts down (grace 100 ms) if still running.
  ~FakeWorkflowsServer();
  FakeWorkflowsServer(const FakeWorkflowsServer&) = delete;
  FakeWorkflowsServer& operator=(const FakeWorkflowsServer&) = delete;

  Transport transport() const { return transport_; }
  // "host:port" clients dial, e.g. "127.0.0.1:40123"; "" for kInProcess.
  const std::string& address() const { return address_; }
  // The bound port; 0 for kInProcess.
  int port() const { return port_; }

  // A channel that skips the network; works for every transport.
  std::shared_ptr<grpc::Channel> InProcessChannel(
      const grpc::ChannelArguments& arguments = {}) const;
  // A channel matching the server's transport: in-process, plaintext TCP,
  // TLS (with `options.root_pem`, and a client certificate for mTLS) or
  // local credentials.
  std::shared_ptr<grpc::Channel> CreateChannel(
      const ChannelOptions& options = {}) const;

  Script& script() { return script_; }
  Journal& journal() { return journal_; }
  HealthState& health() { return *health_; }
  Backend& backend() { return *backend_; }
  // The default backend; nullptr when FakeServerOptions::backend was set.
  InMemoryBackend* in_memory_backend() { return in_memory_.get(); }
  Clock& clock() { return *clock_; }

  // Applies a scenario: rules and auth policy (replacing the script's),
  // health statuses, backend seed data and job progression. All or nothing:
  // everything is validated first, and on error nothing changes. Seed data
  // and job progression need the in-memory backend (FAILED_PRECONDITION
  // with a custom backend).
  absl::Status LoadScenario(const Scenario& scenario);

  // Back to the state after Start(): no rules (global or session) or auth
  // policy, empty journal, initial health, empty in-memory backend.
  void Reset();

  // Ends one session (see kSessionMetadataKey): drops its rules and its
  // calls from the journal. Other sessions, the global rules and all
  // server-wide state stay.
  void ResetSession(absl::string_view session);

  // Sets the grpc.health.v1 status of `service` ("" is the whole server).
  void SetHealth(absl::string_view service,
                 grpc::health::v1::HealthCheckResponse::ServingStatus status);

  // Stops serving: stops accepting calls, ends hung calls and open streams
  // at once (the client sees UNAVAILABLE or CANCELLED), lets other running
  // calls finish for up to `grace`, then cancels those still running, and
  // returns once every handler has returned. Safe to call from several
  // threads at once and again from the destructor: the first call shuts
  // down, the others return when it is done (their `grace` is ignored).
  void Shutdown(absl::Duration grace = absl::Milliseconds(100));
  // True from the moment Shutdown() starts.
  bool is_shut_down() const;

 private:
  explicit FakeWorkflowsServer(FakeServerOptions options);

  const Transport transport_;
  const std::shared_ptr<Clock> clock_;
  const std::shared_ptr<HealthState> health_;
  std::shared_ptr<Backend> backend_;
  // The default backend (also when `wrap_backend` decorates it).
  std::shared_ptr<InMemoryBackend> in_memory_;
  Script script_;
  Journal journal_;
  ShutdownSignal shutdown_signal_;
  ServerCore core_;
  std::vector<std::unique_ptr<grpc::Service>> services_;
  std::string address_;
  int port_ = 0;
  // Last: destroyed first, while everything its handlers use is alive.
  std::unique_ptr<grpc::Server> server_;

  enum class ShutdownState { kServing, kShuttingDown, kDone };
  mutable absl::Mutex shutdown_mu_;
  ShutdownState shutdown_state_ ABSL_GUARDED_BY(shutdown_mu_) =
      ShutdownState::kServing;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_FAKE_WORKFLOWS_SERVER_H_
