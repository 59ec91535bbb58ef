#include "fake_server/control_service.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/call_context.h"
#include "fake_server/journal.h"
#include "fake_server/methods.h"
#include "fake_server/proto_duration.h"
#include "fake_server/scenario_loader.h"
#include "google/protobuf/util/time_util.h"
#include "grpc/health/v1/health.pb.h"

namespace workflows {
namespace fake {
namespace {

using ::grpc::health::v1::HealthCheckResponse;

constexpr absl::Duration kDefaultWaitTimeout = absl::Seconds(10);
// A GetJournal response stays under gRPC's default 4 MiB receive limit,
// with room for the response's own fields.
constexpr size_t kMaxJournalPageBytes = (size_t{4} << 20) - (size_t{16} << 10);
// WaitForCalls wakes when the journal changes; it also looks at the call
// and the server every kDoneCheckInterval, so that a client's cancel (which
// the sync API reports only when asked) or a server shutdown ends it within
// that interval.
constexpr absl::Duration kWaitSlice = kDoneCheckInterval;

grpc::Status ToGrpc(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
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
  mu_.Await(absl::Condition(
      +[](int* leases) { return *leases == 0; }, &leases_));
}

ControlService::Lease::~Lease() {
  if (server_ == nullptr) return;
  absl::MutexLock lock(&owner_->mu_);
  --owner_->leases_;
}

std::string ControlService::HashToken(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(),
         digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

grpc::Status ControlService::CheckToken(
    const grpc::ServerContext& context) const {
  if (options_.bearer_token_sha256.empty()) return grpc::Status::OK;
  constexpr absl::string_view kNeeds =
      "the fake server's control service (workflows.fake.FakeControl) needs "
      "\"authorization: Bearer <token>\" with the token of "
      "--control_token_file";
  const auto& metadata = context.client_metadata();
  const auto header = metadata.find("authorization");
  if (header == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat(kNeeds,
                                     "; the call has no "
                                     "authorization header"));
  }
  const absl::string_view value(header->second.data(), header->second.size());
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat(kNeeds,
                                     "; the call's authorization is "
                                     "not a bearer token"));
  }
  // Comparing digests in constant time reveals nothing about the token.
  const std::string digest = HashToken(value.substr(kScheme.size()));
  if (digest.size() != options_.bearer_token_sha256.size() ||
      CRYPTO_memcmp(digest.data(), options_.bearer_token_sha256.data(),
                    digest.size()) != 0) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        absl::StrCat(kNeeds,
                                     "; the call's bearer token does "
                                     "not match"));
  }
  return grpc::Status::OK;
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

ControlService::Lease ControlService::Admit(grpc::ServerContext* context,
                                            grpc::Status* status) {
  *status = AdmitControlPeer(context->peer(), options_.allow_remote);
  if (!status->ok()) return Lease();
  *status = CheckToken(*context);
  if (!status->ok()) return Lease();
  absl::MutexLock lock(&mu_);
  if (server_ == nullptr) {
    *status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           "the fake server is not running");
    return Lease();
  }
  ++leases_;
  return Lease(this, server_);
}

grpc::Status ControlService::LoadScenario(grpc::ServerContext* context,
                                          const LoadScenarioRequest* request,
                                          LoadScenarioResponse* response) {
  grpc::Status refused;
  Lease server = Admit(context, &refused);
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
  Lease server = Admit(context, &refused);
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
  Lease server = Admit(context, &refused);
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
  Lease server = Admit(context, &refused);
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
  Lease server = Admit(context, &refused);
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
  Lease server = Admit(context, &refused);
  if (server == nullptr) return refused;
  absl::StatusOr<const MethodInfo*> method = FindMethod(request->method());
  if (!method.ok()) return ToGrpc(method.status());
  absl::Duration timeout = kDefaultWaitTimeout;
  if (request->has_timeout()) {
    absl::StatusOr<absl::Duration> checked =
        DurationFromProto(request->timeout(), "WaitForCallsRequest.timeout");
    if (!checked.ok()) return ToGrpc(checked.status());
    timeout = *checked;
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
  Lease server = Admit(context, &refused);
  if (server == nullptr) return refused;
  if (options_.clock == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "AdvanceClock needs a simulated clock: start the "
                        "server with --simulated_clock");
  }
  absl::StatusOr<absl::Duration> duration =
      DurationFromProto(request->duration(), "AdvanceClockRequest.duration");
  if (!duration.ok()) return ToGrpc(duration.status());
  // The clock must stay where a Timestamp (the response, job timestamps)
  // can say where it is; past that, refuse rather than saturate.
  const absl::Time latest = absl::FromUnixSeconds(
      google::protobuf::util::TimeUtil::kTimestampMaxSeconds);
  const absl::Time before = options_.clock->Now();
  if (*duration > latest - before) {
    return grpc::Status(
        grpc::StatusCode::OUT_OF_RANGE,
        absl::StrCat(
            "AdvanceClockRequest.duration: ", absl::FormatDuration(*duration),
            " would move the clock "
            "from ",
            absl::FormatTime(before, absl::UTCTimeZone()), " past ",
            absl::FormatTime(latest, absl::UTCTimeZone()),
            ", the latest time a google.protobuf.Timestamp holds"));
  }
  options_.clock->AdvanceBy(*duration);
  const absl::Time now = options_.clock->Now();
  const int64_t seconds = absl::ToUnixSeconds(now);
  response->mutable_now()->set_seconds(seconds);
  response->mutable_now()->set_nanos(static_cast<int32_t>(
      (now - absl::FromUnixSeconds(seconds)) / absl::Nanoseconds(1)));
  return grpc::Status::OK;
}

grpc::Status ControlService::AdvanceJob(grpc::ServerContext* context,
                                        const AdvanceJobRequest* request,
                                        AdvanceJobResponse* response) {
  grpc::Status refused;
  Lease server = Admit(context, &refused);
  if (server == nullptr) return refused;
  if (request->job_id().empty()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "AdvanceJobRequest.job_id is required, e.g. "
                        "\"job-000001\"");
  }
  InMemoryBackend* backend = server->in_memory_backend();
  if (backend == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "AdvanceJob needs the fake's in-memory backend; this "
                        "server has a custom one");
  }
  absl::Status advanced;
  switch (request->how_case()) {
    case AdvanceJobRequest::kToEnd:
      advanced = backend->AdvanceJobToEnd(request->job_id());
      break;
    case AdvanceJobRequest::kDuration: {
      absl::StatusOr<absl::Duration> duration =
          DurationFromProto(request->duration(), "AdvanceJobRequest.duration");
      if (!duration.ok()) return ToGrpc(duration.status());
      advanced = backend->AdvanceJobBy(request->job_id(), *duration);
      break;
    }
    case AdvanceJobRequest::kToNextStage:
    case AdvanceJobRequest::HOW_NOT_SET:
      advanced = backend->AdvanceJob(request->job_id());
      break;
  }
  if (!advanced.ok()) {
    return ToGrpc(absl::Status(
        advanced.code(), absl::StrCat("AdvanceJob: ", advanced.message())));
  }
  std::optional<descarteslabs::workflows::Job::State> state =
      backend->GetJobState(request->job_id());
  if (!state.has_value()) {
    // Removed by a Reset between the move and this read.
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("AdvanceJob: job \"", request->job_id(),
                                     "\" was removed (Reset) meanwhile"));
  }
  *response->mutable_state() = *std::move(state);
  return grpc::Status::OK;
}

}  // namespace fake
}  // namespace workflows
