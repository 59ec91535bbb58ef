#include "fake_server/control_service.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/journal.h"
#include "fake_server/methods.h"
#include "fake_server/scenario_loader.h"
#include "grpc/health/v1/health.pb.h"

namespace workflows {
namespace fake {
namespace {

using ::grpc::health::v1::HealthCheckResponse;

constexpr absl::Duration kDefaultWaitTimeout = absl::Seconds(10);
// A GetJournal response stays under gRPC's default 4 MiB receive limit,
// with room for the response's own fields.
constexpr size_t kMaxJournalPageBytes = (size_t{4} << 20) - (size_t{16} << 10);
// WaitForCalls waits in slices this long so that a cancelled call or a
// server shutdown ends it promptly.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(50);

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace

ControlService::ControlService(ControlServiceOptions options)
    : options_(std::move(options)) {}

void ControlService::Attach(FakeWorkflowsServer* server) {
  absl::MutexLock lock(&mu_);
  server_ = server;
}

void ControlService::Detach() {
  absl::MutexLock lock(&mu_);
  server_ = nullptr;
}

bool ControlService::IsLocalPeer(absl::string_view peer) {
  // gRPC writes peers as URIs: "ipv4:127.0.0.1:5000", "ipv6:[::1]:5000"
  // (percent-encoded brackets in some versions), "unix:/path". In-process
  // channels have no address: gRPC 1.51 reports "unknown" (TCP peers always
  // have one).
  if (absl::StartsWith(peer, "ipv4:")) {
    return absl::StartsWith(peer, "ipv4:127.");
  }
  if (absl::StartsWith(peer, "ipv6:")) {
    absl::string_view host = peer.substr(5);
    for (absl::string_view loopback :
         {"[::1]:", "%5B::1%5D:", "[::ffff:127.", "%5B::ffff:127."}) {
      if (absl::StartsWith(host, loopback)) return true;
    }
    return false;
  }
  return absl::StartsWith(peer, "unix:") ||
         absl::StartsWith(peer, "unix-abstract:") ||
         absl::StartsWith(peer, "inproc") || peer == "unknown";
}

grpc::Status AdmitControlPeer(absl::string_view peer, bool allow_remote) {
  if (allow_remote || ControlService::IsLocalPeer(peer)) {
    return grpc::Status::OK;
  }
  return grpc::Status(
      grpc::StatusCode::PERMISSION_DENIED,
      absl::StrCat("the fake server's control service only serves loopback "
                   "peers, not ",
                   peer,
                   "; start the server with --allow_remote_control to "
                   "allow others"));
}

FakeWorkflowsServer* ControlService::Admit(grpc::ServerContext* context,
                                           grpc::Status* status) {
  *status = AdmitControlPeer(context->peer(), options_.allow_remote);
  if (!status->ok()) return nullptr;
  absl::MutexLock lock(&mu_);
  if (server_ == nullptr) {
    *status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           "the fake server is not running");
  }
  return server_;
}

grpc::Status ControlService::LoadScenario(grpc::ServerContext* context,
                                          const LoadScenarioRequest* request,
                                          LoadScenarioResponse* response) {
  grpc::Status refused;
  FakeWorkflowsServer* server = Admit(context, &refused);
  if (server == nullptr) return refused;
  const std::string source = request->source_name().empty()
                                 ? "control-service"
                                 : request->source_name();
  absl::StatusOr<Scenario> scenario =
      ParseScenarioText(request->scenario_text(), source);
  if (!scenario.ok()) return ToGrpc(scenario.status());
  if (!request->session().empty()) {
    // All or nothing, and refuses the server-wide fields naming them.
    absl::Status loaded = server->script().LoadSession(
        request->session(), *scenario, request->merge());
    if (!loaded.ok()) {
      return grpc::Status(static_cast<grpc::StatusCode>(loaded.code()),
                          absl::StrCat(source, ": ", loaded.message()));
    }
    response->set_rules_loaded(scenario->rules_size());
    return grpc::Status::OK;
  }
  if (!request->merge()) {
    absl::Status loaded = server->LoadScenario(*scenario);
    if (!loaded.ok()) return ToGrpc(loaded);
    response->set_rules_loaded(scenario->rules_size());
    return grpc::Status::OK;
  }
  if (scenario->has_seed() || scenario->has_job_progression()) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat(source,
                     ": merge: true cannot apply seed or job_progression; "
                     "load them with merge: false (replacing the rules)"));
  }
  // ParseScenarioText validated every rule, so AddRule cannot fail halfway
  // and leave a partial scenario; check anyway and say so if it does.
  for (int i = 0; i < scenario->rules_size(); ++i) {
    absl::Status added = server->script().AddRule(scenario->rules(i));
    if (!added.ok()) {
      return grpc::Status(
          static_cast<grpc::StatusCode>(added.code()),
          absl::StrCat(source, ": rules[", i, "]: ", added.message(), " (", i,
                       " earlier rules were added)"));
    }
  }
  if (scenario->has_auth()) server->script().SetAuthPolicy(scenario->auth());
  for (const HealthEntry& entry : scenario->health()) {
    HealthCheckResponse::ServingStatus status;
    grpc::health::v1::HealthCheckResponse_ServingStatus_Parse(entry.status(),
                                                              &status);
    server->SetHealth(entry.service(), status);
  }
  response->set_rules_loaded(scenario->rules_size());
  return grpc::Status::OK;
}

grpc::Status ControlService::Reset(grpc::ServerContext* context,
                                   const ResetRequest* request,
                                   ResetResponse* /*response*/) {
  grpc::Status refused;
  FakeWorkflowsServer* server = Admit(context, &refused);
  if (server == nullptr) return refused;
  if (!request->session().empty()) {
    server->ResetSession(request->session());
    return grpc::Status::OK;
  }
  server->Reset();
  return grpc::Status::OK;
}

grpc::Status ControlService::SetHealth(grpc::ServerContext* context,
                                       const SetHealthRequest* request,
                                       SetHealthResponse* /*response*/) {
  grpc::Status refused;
  FakeWorkflowsServer* server = Admit(context, &refused);
  if (server == nullptr) return refused;
  HealthCheckResponse::ServingStatus status;
  if (!grpc::health::v1::HealthCheckResponse_ServingStatus_Parse(
          request->status(), &status) ||
      status == HealthCheckResponse::SERVICE_UNKNOWN) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("SetHealthRequest.status \"", request->status(),
                     "\" is not UNKNOWN, SERVING or NOT_SERVING"));
  }
  server->SetHealth(request->service(), status);
  return grpc::Status::OK;
}

grpc::Status ControlService::GetJournal(grpc::ServerContext* context,
                                        const GetJournalRequest* request,
                                        GetJournalResponse* response) {
  grpc::Status refused;
  FakeWorkflowsServer* server = Admit(context, &refused);
  if (server == nullptr) return refused;
  if (!request->method().empty()) {
    absl::StatusOr<const MethodInfo*> method = FindMethod(request->method());
    if (!method.ok()) return ToGrpc(method.status());
  }
  Journal::PageQuery query;
  if (!request->session().empty()) query.session = request->session();
  query.method = request->method();
  query.max_calls = request->page_size();
  query.max_bytes = kMaxJournalPageBytes;
  if (!request->page_token().empty() &&
      !absl::SimpleAtoi(request->page_token(), &query.after)) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrCat("GetJournalRequest.page_token \"",
                     request->page_token().substr(0, 64),
                     "\" is not a next_page_token this server returned"));
  }
  Journal::Page page = server->journal().ReadPage(query);
  *response->mutable_journal() = std::move(page.dump);
  if (page.next != 0) response->set_next_page_token(absl::StrCat(page.next));
  return grpc::Status::OK;
}

grpc::Status ControlService::ClearJournal(grpc::ServerContext* context,
                                          const ClearJournalRequest* request,
                                          ClearJournalResponse* /*response*/) {
  grpc::Status refused;
  FakeWorkflowsServer* server = Admit(context, &refused);
  if (server == nullptr) return refused;
  if (!request->session().empty()) {
    server->journal().ClearSession(request->session());
    return grpc::Status::OK;
  }
  server->journal().Clear();
  return grpc::Status::OK;
}

grpc::Status ControlService::WaitForCalls(grpc::ServerContext* context,
                                          const WaitForCallsRequest* request,
                                          WaitForCallsResponse* /*response*/) {
  grpc::Status refused;
  FakeWorkflowsServer* server = Admit(context, &refused);
  if (server == nullptr) return refused;
  absl::StatusOr<const MethodInfo*> method = FindMethod(request->method());
  if (!method.ok()) return ToGrpc(method.status());
  absl::Duration timeout = request->has_timeout()
                               ? FromProto(request->timeout())
                               : kDefaultWaitTimeout;
  if (timeout < absl::ZeroDuration()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "WaitForCallsRequest.timeout must not be negative");
  }
  const absl::Time client_deadline =
      absl::FromChrono(context->deadline());  // InfiniteFuture if none.
  const absl::Time end = std::min(absl::Now() + timeout, client_deadline);
  const std::string& name = (*method)->full_name;
  for (;;) {
    const absl::Duration left = end - absl::Now();
    const absl::Duration slice =
        std::max(absl::ZeroDuration(), std::min(left, kWaitSlice));
    const Journal& journal = server->journal();
    const std::string& session = request->session();
    absl::Status waited;
    if (session.empty()) {
      waited = request->in_flight()
                   ? journal.WaitForInFlight(name, request->count(), slice)
                   : journal.WaitForCalls(name, request->count(), slice);
    } else {
      waited = request->in_flight()
                   ? journal.WaitForSessionInFlight(session, name,
                                                    request->count(), slice)
                   : journal.WaitForSessionCalls(session, name,
                                                 request->count(), slice);
    }
    if (waited.ok()) return grpc::Status::OK;
    if (context->IsCancelled() || server->is_shut_down()) {
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          "WaitForCalls: the call was cancelled or the "
                          "server is shutting down");
    }
    if (left <= kWaitSlice) {
      // The journal's message says what was seen and what is in flight.
      return grpc::Status(
          grpc::StatusCode::DEADLINE_EXCEEDED,
          absl::StrCat("WaitForCalls(", request->method(), ", ",
                       request->count(), ") timed out after ",
                       absl::FormatDuration(timeout), ": ", waited.message()));
    }
  }
}

grpc::Status ControlService::AdvanceClock(grpc::ServerContext* context,
                                          const AdvanceClockRequest* request,
                                          AdvanceClockResponse* response) {
  grpc::Status refused;
  FakeWorkflowsServer* server = Admit(context, &refused);
  if (server == nullptr) return refused;
  if (options_.clock == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "AdvanceClock needs a simulated clock: start the "
                        "server with --simulated_clock");
  }
  const absl::Duration duration = FromProto(request->duration());
  if (duration < absl::ZeroDuration()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "AdvanceClockRequest.duration must not be negative");
  }
  options_.clock->AdvanceBy(duration);
  const absl::Time now = options_.clock->Now();
  const int64_t nanos = absl::ToUnixNanos(now);
  response->mutable_now()->set_seconds(nanos / 1000000000);
  response->mutable_now()->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return grpc::Status::OK;
}

}  // namespace fake
}  // namespace workflows
