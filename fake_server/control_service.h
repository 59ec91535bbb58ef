#ifndef WORKFLOWS_FAKE_SERVER_CONTROL_SERVICE_H_
#define WORKFLOWS_FAKE_SERVER_CONTROL_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "client/clock.h"
#include "fake_server/control.grpc.pb.h"
#include "fake_server/fake_workflows_server.h"

namespace workflows {
namespace fake {

struct ControlServiceOptions {
  // Serve peers that are not on loopback (or a Unix socket / in-process).
  // Off by default: the control service can rewrite the fake's behaviour.
  bool allow_remote = false;
  // The clock the fake backend runs on, if simulated: AdvanceClock moves
  // it. Null: AdvanceClock is FAILED_PRECONDITION.
  std::shared_ptr<SimulatedClock> clock;
  // If set (ControlService::HashToken of the token), every control call must
  // carry "authorization: Bearer <token>"; others are UNAUTHENTICATED. Only
  // the SHA-256 is kept, so the token itself need not stay in memory.
  std::string bearer_token_sha256;
};

// The control service's admission decision for a call from `peer` (as
// grpc::ServerContext::peer() writes it): OK for loopback, Unix-socket and
// in-process peers (see ControlService::IsLocalPeer), and for any peer when
// `allow_remote`; otherwise PERMISSION_DENIED naming the peer and the
// --allow_remote_control flag that admits it. A free function so the refusal
// can be tested without a non-loopback network.
grpc::Status AdmitControlPeer(absl::string_view peer, bool allow_remote);

// ControlService implements workflows.fake.FakeControl (control.proto): it
// lets a test in any language script a running fake server — load
// scenarios, reset, set health, read and wait on the journal, advance a
// simulated clock or one job. The standalone binary serves it beside the
// Workflows services.
//
// It is registered before the server exists (services must be registered
// when the server is built), and Attach()ed to it once started; calls before
// that or after Detach() are UNAVAILABLE. Detach() waits for the control
// calls using the server to return, so the server may be destroyed right
// after it.
//
//   ControlService control({.allow_remote = false, .clock = clock});
//   builder.RegisterService(&control);   // via the server's builder
//   auto server = FakeWorkflowsServer::Start(options).value();
//   control.Attach(server.get());
//   ...
//   server->Shutdown();  // ends waiting WaitForCalls promptly
//   control.Detach();    // before the server is destroyed
class ControlService final : public FakeControl::Service {
 public:
  explicit ControlService(ControlServiceOptions options);

  // `server` must stay alive until Detach() returns.
  void Attach(FakeWorkflowsServer* server);
  // New calls are UNAVAILABLE from now on; returns once the calls that were
  // using the server have returned (a WaitForCalls ends within its slice
  // once the server is shut down, otherwise at its own timeout).
  void Detach();

  // The SHA-256 of `token` (32 bytes), for
  // ControlServiceOptions::bearer_token_sha256.
  static std::string HashToken(absl::string_view token);

  // True if `peer` (grpc::ServerContext::peer()) is loopback, a Unix socket
  // or in-process ("unknown" in gRPC 1.51).
  static bool IsLocalPeer(absl::string_view peer);

  grpc::Status LoadScenario(grpc::ServerContext* context,
                            const LoadScenarioRequest* request,
                            LoadScenarioResponse* response) override;
  grpc::Status Reset(grpc::ServerContext* context, const ResetRequest* request,
                     ResetResponse* response) override;
  grpc::Status SetHealth(grpc::ServerContext* context,
                         const SetHealthRequest* request,
                         SetHealthResponse* response) override;
  grpc::Status GetJournal(grpc::ServerContext* context,
                          const GetJournalRequest* request,
                          GetJournalResponse* response) override;
  grpc::Status ClearJournal(grpc::ServerContext* context,
                            const ClearJournalRequest* request,
                            ClearJournalResponse* response) override;
  grpc::Status WaitForCalls(grpc::ServerContext* context,
                            const WaitForCallsRequest* request,
                            WaitForCallsResponse* response) override;
  grpc::Status AdvanceClock(grpc::ServerContext* context,
                            const AdvanceClockRequest* request,
                            AdvanceClockResponse* response) override;
  grpc::Status AdvanceJob(grpc::ServerContext* context,
                          const AdvanceJobRequest* request,
                          AdvanceJobResponse* response) override;

 private:
  // The attached server for the duration of one control call: Detach()
  // waits until every Lease is gone.
  class Lease {
   public:
    Lease() = default;
    Lease(ControlService* owner, FakeWorkflowsServer* server)
        : owner_(owner), server_(server) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    FakeWorkflowsServer* operator->() const { return server_; }
    bool operator==(std::nullptr_t) const { return server_ == nullptr; }

   private:
    ControlService* owner_ = nullptr;
    FakeWorkflowsServer* server_ = nullptr;
  };

  // The attached server, after checking the peer and the bearer token; null
  // (and `*status` set) if the call must be refused.
  Lease Admit(grpc::ServerContext* context, grpc::Status* status);
  grpc::Status CheckToken(const grpc::ServerContext& context) const;

  const ControlServiceOptions options_;
  absl::Mutex mu_;
  FakeWorkflowsServer* server_ ABSL_GUARDED_BY(mu_) = nullptr;
  // Calls holding a Lease.
  int leases_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_CONTROL_SERVICE_H_
