#ifndef WORKFLOWS_FAKE_SERVER_CONTROL_SERVICE_H_
#define WORKFLOWS_FAKE_SERVER_CONTROL_SERVICE_H_

#include <grpcpp/grpcpp.h>

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
// simulated clock. The standalone binary serves it beside the Workflows
// services.
//
// It is registered before the server exists (services must be registered
// when the server is built), and Attach()ed to it once started; calls before
// that are UNAVAILABLE.
//
//   ControlService control({.allow_remote = false, .clock = clock});
//   builder.RegisterService(&control);   // via the server's builder
//   auto server = FakeWorkflowsServer::Start(options).value();
//   control.Attach(server.get());
//   ...
//   control.Detach();  // before the server is destroyed
class ControlService final : public FakeControl::Service {
 public:
  explicit ControlService(ControlServiceOptions options);

  // `server` must stay alive until Detach().
  void Attach(FakeWorkflowsServer* server);
  void Detach();

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

 private:
  // The attached server, after checking the peer; null (and `*status` set)
  // if the call must be refused.
  FakeWorkflowsServer* Admit(grpc::ServerContext* context,
                             grpc::Status* status);

  const ControlServiceOptions options_;
  absl::Mutex mu_;
  FakeWorkflowsServer* server_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_CONTROL_SERVICE_H_
