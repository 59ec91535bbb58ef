#include "fake_server/in_memory_backend.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace workflows {
namespace fake {

namespace wf = ::descarteslabs::workflows;
namespace discover = ::descarteslabs::discover::v0alpha;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

namespace {

constexpr char kDefaultChannel[] = "v0-19";
constexpr char kOnBehalfOfHeader[] = "x-on-behalf-of-user";
constexpr int kDefaultGrantPageSize = 100;

// The backend sets delete_time itself and ignores a client's; the field is
// deprecated in the API, so say once, here, that touching it is deliberate.
void ClearDeleteTime(discover::AccessGrant& grant) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  grant.clear_delete_time();
#pragma GCC diagnostic pop
}

grpc::Status InvalidArgument(absl::string_view message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(message));
}

grpc::Status NotFound(absl::string_view message) {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, std::string(message));
}

grpc::Status StreamBroken() {
  return grpc::Status(grpc::StatusCode::CANCELLED,
                      "the stream to the client is broken");
}

// A blocked stream whose call is done: DEADLINE_EXCEEDED if the client's
// deadline passed (as the call context judges it), else CANCELLED.
grpc::Status CallEnded(const CallContext& call) {
  if (call.DeadlineExceeded()) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                        "deadline exceeded while the stream waited for "
                        "changes");
  }
  return grpc::Status(grpc::StatusCode::CANCELLED,
                      "the call ended (cancelled or server shutting down)");
}

grpc::Status ResetWhileStreaming() {
  return grpc::Status(grpc::StatusCode::ABORTED,
                      "the fake backend was reset while this stream was open");
}

int64_t Millis(absl::Time t) { return absl::ToUnixMillis(t); }

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(t);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds))));
}

// Splits a workflow id "email:name".
grpc::Status ParseWorkflowId(const std::string& id, std::string* email,
                             std::string* name) {
  if (id.empty()) {
    return InvalidArgument(
        "id is required: a workflow id has the form \"email:name\", e.g. "
        "\"me@example.com:my-workflow\"");
  }
  const size_t colon = id.find(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == id.size()) {
    return InvalidArgument(absl::StrCat(
        "id \"", id,
        "\" is not a workflow id: it must have the form \"email:name\" with "
        "both parts non-empty, e.g. \"me@example.com:my-workflow\""));
  }
  *email = id.substr(0, colon);
  *name = id.substr(colon + 1);
  return grpc::Status::OK;
}

// Parses a ListJobs bound: RFC 3339 ("2026-01-01T00:00:00Z"), or, as
// Python's datetime.isoformat() sends for naive datetimes, a date-time
// without offset (taken as UTC), or a bare date.
grpc::Status ParseDatetime(absl::string_view field, const std::string& value,
                           absl::Time* out) {
  std::string error;
  for (const char* format : {absl::RFC3339_full, "%Y-%m-%d%ET%H:%M:%E*S",
                             "%Y-%m-%d %H:%M:%E*S", "%Y-%m-%d"}) {
    if (absl::ParseTime(format, value, out, &error)) return grpc::Status::OK;
  }
  return InvalidArgument(absl::StrCat(
      field, " \"", value,
      "\" is not an RFC 3339 date-time (e.g. \"2026-01-01T00:00:00Z\"): ",
      error));
}

// `field`.`name`, or `name` alone when `field` is empty.
std::string SubField(absl::string_view field, absl::string_view name) {
  return field.empty() ? std::string(name) : absl::StrCat(field, ".", name);
}

grpc::Status ValidateGrant(absl::string_view field, bool present,
                           const discover::AccessGrant& grant) {
  if (!present) return InvalidArgument(absl::StrCat(field, " is required"));
  if (grant.asset_name().empty()) {
    return InvalidArgument(
        absl::StrCat(SubField(field, "asset_name"),
                     " is required, e.g. \"asset/workflow/<workflow id>\""));
  }
  if (!grant.has_entity() || grant.entity().id().empty()) {
    return InvalidArgument(
        absl::StrCat(SubField(field, "entity.id"),
                     " is required (a user email or organization id)"));
  }
  const std::string& type = grant.entity().type();
  if (type != "user-email" && type != "organization") {
    return InvalidArgument(
        absl::StrCat(SubField(field, "entity.type"), " \"", type,
                     "\" must be \"user-email\" or \"organization\""));
  }
  if (grant.access().empty()) {
    return InvalidArgument(
        absl::StrCat(SubField(field, "access"),
                     " is required, e.g. \"workflows/role/viewer\""));
  }
  return grpc::Status::OK;
}

}  // namespace

class InMemoryBackend::ChangeSignal {
 public:
  int64_t generation() const {
    absl::MutexLock lock(&mu_);
    return generation_;
  }

  void Notify() {
    absl::MutexLock lock(&mu_);
    ++generation_;
    changed_.SignalAll();
  }

  // Returns when the generation differs from `seen` or at `deadline` (real
  // time).
  void WaitForChange(int64_t seen, absl::Time deadline) const {
    absl::MutexLock lock(&mu_);
    while (generation_ == seen) {
      if (changed_.WaitWithDeadline(&mu_, deadline)) return;
    }
  }

 private:
  mutable absl::Mutex mu_;
  mutable absl::CondVar changed_;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

InMemoryBackend::InMemoryBackend() : InMemoryBackend(Options()) {}

InMemoryBackend::InMemoryBackend(Options options)
    : clock_(options.clock ? std::move(options.clock) : Clock::Real()),
      health_(options.health ? std::move(options.health)
                             : std::make_shared<HealthState>()),
      default_identity_(std::move(options.identity)),
      url_base_(std::move(options.url_base)),
      default_xyz_days_to_expiration_(options.default_xyz_days_to_expiration),
      job_expiration_(options.job_expiration),
      signal_(std::make_shared<ChangeSignal>()),
      initial_default_progression_(options.default_progression),
      default_progression_(std::move(options.default_progression)) {
  if (auto* simulated = dynamic_cast<SimulatedClock*>(clock_.get())) {
    // Captures the signal, not `this`: the clock may call a copy of the
    // observer just after the backend is gone.
    clock_observer_id_ = simulated->AddObserver(
        [signal = signal_](absl::Time) { signal->Notify(); });
  }
}

InMemoryBackend::~InMemoryBackend() {
  if (clock_observer_id_ >= 0) {
    static_cast<SimulatedClock*>(clock_.get())
        ->RemoveObserver(clock_observer_id_);
  }
}

Identity InMemoryBackend::CallerIdentity(const CallContext& call) const {
  Identity identity = default_identity_;
  auto it = call.request_metadata().find(kOnBehalfOfHeader);
  if (it != call.request_metadata().end() && !it->second.empty()) {
    identity.email = it->second;
    identity.user = it->second;
  }
  return identity;
}

void InMemoryBackend::WakeAll() { signal_->Notify(); }

std::string InMemoryBackend::NextIdLocked(absl::string_view prefix) {
  return absl::StrFormat("%s-%06d", prefix, next_sequence_++);
}

void InMemoryBackend::FillWorkflowUrls(wf::Workflow* workflow) const {
  workflow->set_wmts_url_template(absl::StrCat(url_base_, "/wmts/workflow/",
                                               workflow->id(),
                                               "/1.0.0/WMTSCapabilities.xml"));
  for (wf::VersionedGraft& graft : *workflow->mutable_versioned_grafts()) {
    const std::string& channel =
        graft.channel().empty() ? kDefaultChannel : graft.channel();
    graft.set_url_template(absl::StrCat(url_base_, "/", channel, "/workflow/",
                                        workflow->id(), "/", graft.version(),
                                        "/{z}/{x}/{y}.png"));
    graft.set_wmts_url_template(
        absl::StrCat(url_base_, "/wmts/workflow/", workflow->id(), "/",
                     graft.version(), "/1.0.0/WMTSCapabilities.xml"));
  }
}

// ---------------------------------------------------------------------------
// Seeding and inspection.

absl::Status InMemoryBackend::PutWorkflow(wf::Workflow workflow) {
  std::string email, name;
  grpc::Status parsed = ParseWorkflowId(workflow.id(), &email, &name);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(parsed.error_message());
  }
  if (workflow.email().empty()) workflow.set_email(email);
  if (workflow.name().empty()) workflow.set_name(name);
  absl::MutexLock lock(&mu_);
  workflows_[workflow.id()] = std::move(workflow);
  return absl::OkStatus();
}

std::string InMemoryBackend::PutJob(wf::Job job,
                                    std::optional<JobProgression> progression) {
  const absl::Time now = Now();
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    if (job.id().empty()) job.set_id(NextIdLocked("job"));
    if (job.timestamp() == 0) job.set_timestamp(Millis(now));
    id = job.id();
    wf::Job::State state = job.state();
    job.clear_state();
    JobTimeline timeline(
        progression ? *std::move(progression) : default_progression_,
        std::move(state), now);
    jobs_.erase(id);
    jobs_.emplace(
        id, JobRecord{std::move(job), std::move(timeline), next_sequence_++});
  }
  signal_->Notify();
  return id;
}

std::string InMemoryBackend::PutXYZ(wf::XYZ xyz) {
  absl::MutexLock lock(&mu_);
  if (xyz.id().empty()) xyz.set_id(NextIdLocked("xyz"));
  std::string id = xyz.id();
  xyzs_[id] = XYZRecord{std::move(xyz), next_sequence_++};
  return id;
}

std::string InMemoryBackend::SeedXYZ(wf::XYZ xyz) {
  const absl::Time now = Now();
  if (xyz.user().empty()) xyz.set_user(default_identity_.user);
  if (xyz.org().empty()) xyz.set_org(default_identity_.org);
  if (xyz.created_timestamp() == 0) xyz.set_created_timestamp(Millis(now));
  if (xyz.updated_timestamp() == 0) {
    xyz.set_updated_timestamp(xyz.created_timestamp());
  }
  if (!xyz.has_expires_timestamp()) {
    SetTimestamp(absl::FromUnixMillis(xyz.created_timestamp()) +
                     absl::Hours(24) * default_xyz_days_to_expiration_,
                 xyz.mutable_expires_timestamp());
  }
  absl::MutexLock lock(&mu_);
  if (xyz.id().empty()) xyz.set_id(NextIdLocked("xyz"));
  const std::string& channel =
      xyz.channel().empty() ? kDefaultChannel : xyz.channel();
  if (xyz.url_template().empty()) {
    xyz.set_url_template(absl::StrCat(url_base_, "/", channel, "/xyz/",
                                      xyz.id(), "/{z}/{x}/{y}.png"));
  }
  if (xyz.wmts_url_template().empty()) {
    xyz.set_wmts_url_template(absl::StrCat(url_base_, "/", channel,
                                           "/wmts/xyz/", xyz.id(),
                                           "/1.0.0/WMTSCapabilities.xml"));
  }
  std::string id = xyz.id();
  xyzs_[id] = XYZRecord{std::move(xyz), next_sequence_++};
  return id;
}

absl::Status InMemoryBackend::PutAccessGrant(discover::AccessGrant grant) {
  grpc::Status valid = ValidateGrant("", true, grant);
  if (!valid.ok()) return absl::InvalidArgumentError(valid.error_message());
  ClearDeleteTime(grant);
  if (!grant.has_create_time()) {
    SetTimestamp(Now(), grant.mutable_create_time());
  }
  if (!grant.has_update_time()) {
    *grant.mutable_update_time() = grant.create_time();
  }
  GrantKey key(grant.asset_name(), grant.entity().type(), grant.entity().id(),
               grant.access());
  absl::MutexLock lock(&mu_);
  // Granting twice is idempotent: the first grant is kept.
  grants_.emplace(std::move(key), std::move(grant));
  return absl::OkStatus();
}

absl::Status InMemoryBackend::AppendXYZLog(const std::string& xyz_id,
                                           wf::XYZLogRecord record) {
  {
    absl::MutexLock lock(&mu_);
    if (xyzs_.find(xyz_id) == xyzs_.end()) {
      return absl::NotFoundError(
          absl::StrCat("XYZ \"", xyz_id, "\" not found; create it first"));
    }
    if (record.record().timestamp() == 0) {
      record.mutable_record()->set_timestamp(Millis(Now()));
    }
    xyz_logs_[xyz_id].push_back(std::move(record));
  }
  signal_->Notify();
  return absl::OkStatus();
}

void InMemoryBackend::Reset() {
  {
    absl::MutexLock lock(&mu_);
    workflows_.clear();
    jobs_.clear();
    xyzs_.clear();
    xyz_logs_.clear();
    grants_.clear();
    default_progression_ = initial_default_progression_;
    next_progressions_.clear();
    ++reset_count_;
  }
  health_->Reset();
  signal_->Notify();
}

void InMemoryBackend::SetDefaultJobProgression(JobProgression progression) {
  absl::MutexLock lock(&mu_);
  default_progression_ = std::move(progression);
}

void InMemoryBackend::SetNextJobProgression(JobProgression progression) {
  absl::MutexLock lock(&mu_);
  next_progressions_.push_back(std::move(progression));
}

absl::Status InMemoryBackend::SetJobProgression(const std::string& job_id,
                                                JobProgression progression) {
  {
    absl::MutexLock lock(&mu_);
    JobRecord* record = FindJobLocked(job_id);
    if (record == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("job \"", job_id, "\" not found"));
    }
    record->timeline.SetProgression(std::move(progression), Now());
  }
  signal_->Notify();
  return absl::OkStatus();
}

absl::Status InMemoryBackend::MoveJob(
    const std::string& job_id,
    absl::FunctionRef<bool(JobTimeline&, absl::Time)> move) {
  {
    absl::MutexLock lock(&mu_);
    JobRecord* record = FindJobLocked(job_id);
    if (record == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("job \"", job_id, "\" not found"));
    }
    if (!move(record->timeline, Now())) {
      return absl::FailedPreconditionError(
          absl::StrCat("job \"", job_id, "\" is already ",
                       wf::Job::Stage_Name(record->timeline.current().stage()),
                       " and cannot advance"));
    }
  }
  signal_->Notify();
  return absl::OkStatus();
}

absl::Status InMemoryBackend::AdvanceJob(const std::string& job_id) {
  return MoveJob(job_id, [](JobTimeline& timeline, absl::Time now) {
    return timeline.Step(now);
  });
}

absl::Status InMemoryBackend::AdvanceJobToEnd(const std::string& job_id) {
  return MoveJob(job_id, [](JobTimeline& timeline, absl::Time now) {
    return timeline.StepToEnd(now);
  });
}

absl::Status InMemoryBackend::AdvanceJobBy(const std::string& job_id,
                                           absl::Duration duration) {
  if (duration < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a job cannot advance by a negative duration (",
                     absl::FormatDuration(duration), ")"));
  }
  return MoveJob(job_id, [duration](JobTimeline& timeline, absl::Time now) {
    return timeline.Skip(duration, now);
  });
}

std::optional<wf::Job::State> InMemoryBackend::GetJobState(
    const std::string& job_id) const {
  std::optional<wf::Job> job = FindJob(job_id);
  if (!job.has_value()) return std::nullopt;
  return job->state();
}

std::vector<wf::Job::State> InMemoryBackend::GetJobHistory(
    const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  JobRecord* record = FindJobLocked(job_id);
  if (record == nullptr) return {};
  record->timeline.AdvanceTo(Now());
  return record->timeline.history();
}

std::optional<wf::Job> InMemoryBackend::FindJob(
    const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  JobRecord* record = FindJobLocked(job_id);
  if (record == nullptr) return std::nullopt;
  return JobLocked(*record);
}

std::vector<std::string> InMemoryBackend::JobIds() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<int64_t, std::string>> ordered;
  for (const auto& [id, record] : jobs_)
    ordered.emplace_back(record.sequence, id);
  std::sort(ordered.begin(), ordered.end());
  std::vector<std::string> ids;
  for (auto& [sequence, id] : ordered) ids.push_back(std::move(id));
  return ids;
}

std::optional<wf::Workflow> InMemoryBackend::FindWorkflow(
    const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = workflows_.find(id);
  if (it == workflows_.end()) return std::nullopt;
  return it->second;
}

std::optional<wf::XYZ> InMemoryBackend::FindXYZ(
    const std::string& xyz_id) const {
  absl::MutexLock lock(&mu_);
  auto it = xyzs_.find(xyz_id);
  if (it == xyzs_.end()) return std::nullopt;
  return it->second.xyz;
}

std::vector<discover::AccessGrant> InMemoryBackend::AccessGrantsFor(
    const std::string& asset_name) const {
  absl::MutexLock lock(&mu_);
  std::vector<discover::AccessGrant> grants;
  for (auto it = grants_.lower_bound(GrantKey(asset_name, "", "", ""));
       it != grants_.end() && std::get<0>(it->first) == asset_name; ++it) {
    grants.push_back(it->second);
  }
  return grants;
}

InMemoryBackend::JobRecord* InMemoryBackend::FindJobLocked(
    const std::string& id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

wf::Job InMemoryBackend::JobLocked(JobRecord& record) const {
  record.timeline.AdvanceTo(Now());
  wf::Job job = record.job;
  *job.mutable_state() = record.timeline.current();
  if (job.state().stage() == wf::Job::SUCCEEDED &&
      job.destination().has_download_flag() &&
      job.destination().download().result_url().empty()) {
    job.mutable_destination()->mutable_download()->set_result_url(
        absl::StrCat(url_base_, "/jobs/", job.id(), "/result"));
  }
  return job;
}

// ---------------------------------------------------------------------------
// WorkflowAPI.

grpc::Status InMemoryBackend::UpsertWorkflow(
    CallContext* call, const wf::UpsertWorkflowRequest& request,
    wf::Workflow* response) {
  std::string email, name;
  grpc::Status status = ParseWorkflowId(request.id(), &email, &name);
  if (!status.ok()) return status;
  std::set<std::string> versions;
  for (int i = 0; i < request.versioned_grafts_size(); ++i) {
    const wf::VersionedGraft& graft = request.versioned_grafts(i);
    if (graft.version().empty()) {
      return InvalidArgument(absl::StrCat(
          "versioned_grafts[", i, "].version is required, e.g. \"1.0.0\""));
    }
    if (graft.serialized_graft().empty()) {
      return InvalidArgument(
          absl::StrCat("versioned_grafts[", i,
                       "].serialized_graft is required: the graft JSON of "
                       "version \"",
                       graft.version(), "\" is empty"));
    }
    if (!versions.insert(graft.version()).second) {
      return InvalidArgument(absl::StrCat("versioned_grafts[", i,
                                          "].version \"", graft.version(),
                                          "\" appears more than once"));
    }
  }
  const Identity identity = CallerIdentity(*call);
  const int64_t now = Millis(Now());

  absl::MutexLock lock(&mu_);
  wf::Workflow workflow;
  auto existing = workflows_.find(request.id());
  if (existing != workflows_.end()) {
    workflow = existing->second;
  } else {
    workflow.set_id(request.id());
    workflow.set_email(email);
    workflow.set_name(name);
    workflow.set_user(identity.user);
    workflow.set_org(identity.org);
    workflow.set_created_timestamp(now);
  }
  workflow.set_updated_timestamp(now);
  workflow.set_title(request.title());
  workflow.set_description(request.description());
  *workflow.mutable_labels() = request.labels();
  *workflow.mutable_tags() = request.tags();
  for (const wf::VersionedGraft& graft : request.versioned_grafts()) {
    auto& stored = *workflow.mutable_versioned_grafts();
    auto it = std::find_if(stored.begin(), stored.end(),
                           [&](const wf::VersionedGraft& v) {
                             return v.version() == graft.version();
                           });
    const int64_t created = it == stored.end() ? now : it->created_timestamp();
    wf::VersionedGraft* target = it == stored.end() ? stored.Add() : &*it;
    *target = graft;
    target->set_created_timestamp(created);
    target->set_updated_timestamp(now);
  }
  FillWorkflowUrls(&workflow);
  if (!request.dry_run()) workflows_[workflow.id()] = workflow;
  *response = std::move(workflow);
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::GetWorkflow(CallContext* call,
                                          const wf::GetWorkflowRequest& request,
                                          wf::Workflow* response) {
  if (request.id().empty()) {
    return InvalidArgument("id is required (\"email:name\")");
  }
  absl::MutexLock lock(&mu_);
  auto it = workflows_.find(request.id());
  if (it == workflows_.end()) {
    return NotFound(absl::StrCat("workflow \"", request.id(), "\" not found"));
  }
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::GetVersion(CallContext* call,
                                         const wf::GetVersionRequest& request,
                                         wf::VersionedGraft* response) {
  if (request.id().empty()) {
    return InvalidArgument("id is required (\"email:name\")");
  }
  if (request.version().empty()) {
    return InvalidArgument("version is required, e.g. \"1.0.0\"");
  }
  absl::MutexLock lock(&mu_);
  auto it = workflows_.find(request.id());
  if (it == workflows_.end()) {
    return NotFound(absl::StrCat("workflow \"", request.id(), "\" not found"));
  }
  for (const wf::VersionedGraft& graft : it->second.versioned_grafts()) {
    if (graft.version() == request.version()) {
      *response = graft;
      return grpc::Status::OK;
    }
  }
  return NotFound(absl::StrCat("workflow \"", request.id(),
                               "\" has no version \"", request.version(),
                               "\""));
}

grpc::Status InMemoryBackend::SearchWorkflows(
    CallContext* call, const wf::SearchWorkflowsRequest& request,
    ServerStream<wf::Workflow>* stream) {
  std::vector<wf::Workflow> matches;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, workflow] : workflows_) {
      if (!request.email().empty() && workflow.email() != request.email()) {
        continue;
      }
      if (!absl::StartsWith(workflow.name(), request.name_prefix())) continue;
      if (!request.tags().empty() &&
          std::none_of(workflow.tags().begin(), workflow.tags().end(),
                       [&](const std::string& tag) {
                         return std::find(request.tags().begin(),
                                          request.tags().end(),
                                          tag) != request.tags().end();
                       })) {
        continue;
      }
      matches.push_back(workflow);
    }
  }
  for (const wf::Workflow& workflow : matches) {
    if (!stream->Write(workflow)) return StreamBroken();
  }
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::DeleteWorkflow(
    CallContext* call, const wf::DeleteWorkflowRequest& request,
    wf::Empty* response) {
  if (request.id().empty()) {
    return InvalidArgument("id is required (\"email:name\")");
  }
  absl::MutexLock lock(&mu_);
  if (workflows_.erase(request.id()) == 0) {
    return NotFound(absl::StrCat("workflow \"", request.id(), "\" not found"));
  }
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::GetWmtsUrlTemplate(
    CallContext* call, const wf::Empty& request,
    wf::WmtsUrlTemplateResponse* response) {
  response->set_wmts_url_template(absl::StrCat(
      url_base_,
      "/wmts/workflow/{workflow}/{version}/1.0.0/WMTSCapabilities.xml"));
  return grpc::Status::OK;
}

// ---------------------------------------------------------------------------
// JobAPI.

grpc::Status InMemoryBackend::CreateJob(CallContext* call,
                                        const wf::CreateJobRequest& request,
                                        wf::Job* response) {
  if (request.serialized_graft().empty()) {
    return InvalidArgument(
        "serialized_graft is required: the job's graft JSON is empty");
  }
  const Identity identity = CallerIdentity(*call);
  const absl::Time now = Now();

  absl::MutexLock lock(&mu_);
  wf::Job job;
  job.set_id(NextIdLocked("job"));
  job.set_serialized_graft(request.serialized_graft());
  if (request.has_typespec()) *job.mutable_typespec() = request.typespec();
  *job.mutable_arguments() = request.arguments();
  job.set_geoctx_graft(request.geoctx_graft());
  job.set_no_ruster(request.no_ruster());
  job.set_channel(request.channel());
  job.set_client_version(request.client_version());
  job.set_no_cache(request.no_cache());
  job.set_trace(request.trace());
  job.set_type(request.type());
  if (request.has_format()) *job.mutable_format() = request.format();
  if (request.has_destination()) {
    *job.mutable_destination() = request.destination();
  }
  job.set_timestamp(Millis(now));
  job.set_user(identity.user);
  job.set_org(identity.org);
  SetTimestamp(now + job_expiration_, job.mutable_expires_timestamp());

  JobProgression progression = default_progression_;
  if (!next_progressions_.empty()) {
    progression = std::move(next_progressions_.front());
    next_progressions_.erase(next_progressions_.begin());
  }
  const std::string id = job.id();
  auto [it, inserted] = jobs_.emplace(
      id, JobRecord{std::move(job),
                    JobTimeline(std::move(progression), wf::Job::QUEUED, now),
                    next_sequence_++});
  *response = JobLocked(it->second);
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::ListJobs(CallContext* call,
                                       const wf::ListJobsRequest& request,
                                       ServerStream<wf::Job>* stream) {
  absl::Time start = absl::InfinitePast();
  absl::Time end = absl::InfiniteFuture();
  if (!request.start_datetime().empty()) {
    grpc::Status status =
        ParseDatetime("start_datetime", request.start_datetime(), &start);
    if (!status.ok()) return status;
  }
  if (!request.end_datetime().empty()) {
    grpc::Status status =
        ParseDatetime("end_datetime", request.end_datetime(), &end);
    if (!status.ok()) return status;
  }
  if (start > end) {
    return InvalidArgument(absl::StrCat(
        "start_datetime \"", request.start_datetime(),
        "\" is after end_datetime \"", request.end_datetime(), "\""));
  }
  std::vector<std::pair<int64_t, wf::Job>> matches;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, record] : jobs_) {
      const absl::Time created = absl::FromUnixMillis(record.job.timestamp());
      if (created < start || created > end) continue;
      matches.emplace_back(record.sequence, JobLocked(record));
    }
  }
  std::sort(matches.begin(), matches.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [sequence, job] : matches) {
    if (!stream->Write(job)) return StreamBroken();
  }
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::GetJob(CallContext* call,
                                     const wf::GetJobRequest& request,
                                     wf::Job* response) {
  if (request.id().empty()) return InvalidArgument("id is required");
  absl::MutexLock lock(&mu_);
  JobRecord* record = FindJobLocked(request.id());
  if (record == nullptr) {
    return NotFound(absl::StrCat("job \"", request.id(), "\" not found"));
  }
  *response = JobLocked(*record);
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::CancelJob(CallContext* call,
                                        const wf::CancelJobRequest& request,
                                        wf::CancelJobResponse* response) {
  if (request.id().empty()) return InvalidArgument("id is required");
  {
    absl::MutexLock lock(&mu_);
    JobRecord* record = FindJobLocked(request.id());
    if (record == nullptr) {
      return NotFound(absl::StrCat("job \"", request.id(), "\" not found"));
    }
    if (!record->timeline.Cancel(Now())) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          absl::StrCat("job \"", request.id(), "\" already finished (",
                       wf::Job::Stage_Name(record->timeline.current().stage()),
                       "); only unfinished jobs can be cancelled"));
    }
  }
  signal_->Notify();
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::WatchJob(CallContext* call,
                                       const wf::WatchJobRequest& request,
                                       ServerStream<wf::Job::State>* stream) {
  if (request.id().empty()) return InvalidArgument("id is required");
  std::optional<size_t> sent;  // History entries already sent.
  int64_t reset_count = 0;
  while (true) {
    const int64_t generation = signal_->generation();
    std::vector<wf::Job::State> updates;
    bool terminal = false;
    absl::Time next_transition = absl::InfiniteFuture();  // Clock time.
    {
      absl::MutexLock lock(&mu_);
      JobRecord* record = FindJobLocked(request.id());
      if (!sent.has_value()) {
        if (record == nullptr) {
          return NotFound(absl::StrCat("job \"", request.id(), "\" not found"));
        }
        reset_count = reset_count_;
      }
      if (record == nullptr || reset_count != reset_count_) {
        return ResetWhileStreaming();
      }
      record->timeline.AdvanceTo(Now());
      const auto& history = record->timeline.history();
      // The current state at once, then every state reached since.
      if (!sent.has_value()) sent = history.size() - 1;
      updates.assign(history.begin() + *sent, history.end());
      sent = history.size();
      terminal = record->timeline.terminal();
      next_transition = record->timeline.next_transition();
    }
    for (const wf::Job::State& state : updates) {
      if (!stream->Write(state)) return StreamBroken();
    }
    if (terminal) return grpc::Status::OK;
    if (call->IsDone()) return CallEnded(*call);
    // Wakes on a change (any job, a simulated clock's advance, WakeAll at
    // shutdown), when the job's next stage is due on a clock that moves by
    // itself, or when the call must be looked at again; never on a poll.
    absl::Time wake = call->NextDoneCheck();
    if (clock_observer_id_ < 0 && next_transition != absl::InfiniteFuture()) {
      wake = std::min(wake, absl::Now() + (next_transition - Now()));
    }
    signal_->WaitForChange(generation, wake);
  }
}

// ---------------------------------------------------------------------------
// XYZAPI.

grpc::Status InMemoryBackend::CreateXYZ(CallContext* call,
                                        const wf::CreateXYZRequest& request,
                                        wf::XYZ* response) {
  if (request.serialized_graft().empty()) {
    return InvalidArgument(
        "serialized_graft is required: the XYZ's graft JSON is empty");
  }
  const Identity identity = CallerIdentity(*call);
  const absl::Time now = Now();
  const uint32_t days = request.days_to_expiration() > 0
                            ? request.days_to_expiration()
                            : default_xyz_days_to_expiration_;
  const std::string& channel =
      request.channel().empty() ? kDefaultChannel : request.channel();

  absl::MutexLock lock(&mu_);
  wf::XYZ xyz;
  xyz.set_id(NextIdLocked("xyz"));
  xyz.set_created_timestamp(Millis(now));
  xyz.set_updated_timestamp(Millis(now));
  xyz.set_name(request.name());
  xyz.set_description(request.description());
  xyz.set_channel(request.channel());
  xyz.set_client_version(request.client_version());
  xyz.set_serialized_graft(request.serialized_graft());
  if (request.has_typespec()) *xyz.mutable_typespec() = request.typespec();
  *xyz.mutable_parameters() = request.parameters();
  *xyz.mutable_viz_options() = request.viz_options();
  xyz.set_user(identity.user);
  xyz.set_org(identity.org);
  xyz.set_public_(request.public_());
  SetTimestamp(now + absl::Hours(24) * days, xyz.mutable_expires_timestamp());
  xyz.set_url_template(absl::StrCat(url_base_, "/", channel, "/xyz/", xyz.id(),
                                    "/{z}/{x}/{y}.png"));
  xyz.set_wmts_url_template(absl::StrCat(url_base_, "/", channel, "/wmts/xyz/",
                                         xyz.id(),
                                         "/1.0.0/WMTSCapabilities.xml"));
  xyzs_[xyz.id()] = XYZRecord{xyz, next_sequence_++};
  *response = std::move(xyz);
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::GetXYZ(CallContext* call,
                                     const wf::GetXYZRequest& request,
                                     wf::XYZ* response) {
  if (request.xyz_id().empty()) return InvalidArgument("xyz_id is required");
  absl::MutexLock lock(&mu_);
  auto it = xyzs_.find(request.xyz_id());
  if (it == xyzs_.end()) {
    return NotFound(absl::StrCat("XYZ \"", request.xyz_id(), "\" not found"));
  }
  *response = it->second.xyz;
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::ListXYZ(CallContext* call,
                                      const wf::ListXYZRequest& request,
                                      ServerStream<wf::XYZ>* stream) {
  const Identity identity = CallerIdentity(*call);
  std::vector<std::pair<int64_t, wf::XYZ>> matches;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, record] : xyzs_) {
      const bool listed = request.public_()
                              ? record.xyz.public_()
                              : record.xyz.user() == identity.user;
      if (listed) matches.emplace_back(record.sequence, record.xyz);
    }
  }
  std::sort(matches.begin(), matches.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [sequence, xyz] : matches) {
    if (!stream->Write(xyz)) return StreamBroken();
  }
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::DeleteXYZ(CallContext* call,
                                        const wf::DeleteXYZRequest& request,
                                        google::protobuf::Empty* response) {
  if (request.xyz_id().empty()) return InvalidArgument("xyz_id is required");
  absl::MutexLock lock(&mu_);
  if (xyzs_.erase(request.xyz_id()) == 0) {
    return NotFound(absl::StrCat("XYZ \"", request.xyz_id(), "\" not found"));
  }
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::GetXYZSessionLogs(
    CallContext* call, const wf::GetXYZSessionLogsRequest& request,
    ServerStream<wf::XYZLogRecord>* stream) {
  if (request.xyz_id().empty()) return InvalidArgument("xyz_id is required");
  const auto matches = [&request](const wf::XYZLogRecord& log) {
    return (request.session_id().empty() ||
            log.session_id() == request.session_id()) &&
           log.record().level() >= request.level() &&
           log.record().timestamp() >= request.start_timestamp();
  };
  int64_t reset_count = 0;
  {
    absl::MutexLock lock(&mu_);
    if (xyzs_.find(request.xyz_id()) == xyzs_.end()) {
      return NotFound(absl::StrCat("XYZ \"", request.xyz_id(), "\" not found"));
    }
    reset_count = reset_count_;
  }
  // Like the real log listener, the stream stays open for new records until
  // the client goes away.
  size_t next = 0;
  while (true) {
    const int64_t generation = signal_->generation();
    std::vector<wf::XYZLogRecord> updates;
    {
      absl::MutexLock lock(&mu_);
      if (reset_count != reset_count_) return ResetWhileStreaming();
      auto it = xyz_logs_.find(request.xyz_id());
      if (it != xyz_logs_.end()) {
        for (; next < it->second.size(); ++next) {
          if (matches(it->second[next])) updates.push_back(it->second[next]);
        }
      }
    }
    for (const wf::XYZLogRecord& log : updates) {
      if (!stream->Write(log)) return StreamBroken();
    }
    if (call->IsDone()) return CallEnded(*call);
    signal_->WaitForChange(generation, call->NextDoneCheck());
  }
}

// ---------------------------------------------------------------------------
// AccessGrantApi.

grpc::Status InMemoryBackend::CreateAccessGrant(
    CallContext* call, const discover::CreateAccessGrantRequest& request,
    discover::CreateAccessGrantResponse* response) {
  grpc::Status status = ValidateGrant(
      "access_grant", request.has_access_grant(), request.access_grant());
  if (!status.ok()) return status;
  const discover::AccessGrant& grant = request.access_grant();
  const GrantKey key(grant.asset_name(), grant.entity().type(),
                     grant.entity().id(), grant.access());
  absl::MutexLock lock(&mu_);
  auto it = grants_.find(key);
  if (it == grants_.end()) {
    // Granting twice is idempotent: the first grant is kept.
    discover::AccessGrant stored = grant;
    ClearDeleteTime(stored);
    SetTimestamp(Now(), stored.mutable_create_time());
    *stored.mutable_update_time() = stored.create_time();
    it = grants_.emplace(key, std::move(stored)).first;
  }
  *response->mutable_access_grant() = it->second;
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::DeleteAccessGrant(
    CallContext* call, const discover::DeleteAccessGrantRequest& request,
    discover::DeleteAccessGrantResponse* response) {
  grpc::Status status = ValidateGrant(
      "access_grant", request.has_access_grant(), request.access_grant());
  if (!status.ok()) return status;
  const discover::AccessGrant& grant = request.access_grant();
  absl::MutexLock lock(&mu_);
  response->set_revoked(
      grants_.erase(GrantKey(grant.asset_name(), grant.entity().type(),
                             grant.entity().id(), grant.access())) > 0);
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::ListAccessGrants(
    CallContext* call, const discover::ListAccessGrantsRequest& request,
    discover::ListAccessGrantsResponse* response) {
  if (request.asset_name().empty()) {
    return InvalidArgument(
        "asset_name is required, e.g. \"asset/workflow/<workflow id>\"");
  }
  if (request.page_size() < 0) {
    return InvalidArgument(absl::StrCat("page_size ", request.page_size(),
                                        " must not be negative"));
  }
  const size_t page_size =
      request.page_size() > 0 ? request.page_size() : kDefaultGrantPageSize;
  size_t offset = 0;
  if (!request.page_token().empty() &&
      !absl::SimpleAtoi(request.page_token(), &offset)) {
    return InvalidArgument(absl::StrCat(
        "page_token \"", request.page_token(),
        "\" is not a next_page value returned by ListAccessGrants"));
  }
  const std::vector<discover::AccessGrant> grants =
      AccessGrantsFor(request.asset_name());
  if (offset > grants.size()) {
    return InvalidArgument(absl::StrCat("page_token \"", request.page_token(),
                                        "\" is past the end of the list (",
                                        grants.size(), " grants)"));
  }
  const size_t end = std::min(grants.size(), offset + page_size);
  for (size_t i = offset; i < end; ++i) {
    *response->add_access_grants() = grants[i];
  }
  if (end < grants.size()) response->set_next_page(absl::StrCat(end));
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::ListAccessGrantsStream(
    CallContext* call, const discover::ListAccessGrantsStreamRequest& request,
    ServerStream<discover::ListAccessGrantsStreamResponse>* stream) {
  if (request.asset_name().empty()) {
    return InvalidArgument(
        "asset_name is required, e.g. \"asset/workflow/<workflow id>\"");
  }
  for (const discover::AccessGrant& grant :
       AccessGrantsFor(request.asset_name())) {
    discover::ListAccessGrantsStreamResponse message;
    *message.mutable_access_grant() = grant;
    if (!stream->Write(message)) return StreamBroken();
  }
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::ReplaceAccessGrant(
    CallContext* call, const discover::ReplaceAccessGrantRequest& request,
    discover::ReplaceAccessGrantResponse* response) {
  grpc::Status status =
      ValidateGrant("delete_access_grant", request.has_delete_access_grant(),
                    request.delete_access_grant());
  if (!status.ok()) return status;
  status =
      ValidateGrant("create_access_grant", request.has_create_access_grant(),
                    request.create_access_grant());
  if (!status.ok()) return status;
  const discover::AccessGrant& old_grant = request.delete_access_grant();
  const discover::AccessGrant& new_grant = request.create_access_grant();
  const GrantKey new_key(new_grant.asset_name(), new_grant.entity().type(),
                         new_grant.entity().id(), new_grant.access());
  absl::MutexLock lock(&mu_);
  grants_.erase(GrantKey(old_grant.asset_name(), old_grant.entity().type(),
                         old_grant.entity().id(), old_grant.access()));
  auto it = grants_.find(new_key);
  if (it == grants_.end()) {
    discover::AccessGrant stored = new_grant;
    ClearDeleteTime(stored);
    SetTimestamp(Now(), stored.mutable_create_time());
    *stored.mutable_update_time() = stored.create_time();
    it = grants_.emplace(new_key, std::move(stored)).first;
  }
  *response->mutable_access_grant() = it->second;
  return grpc::Status::OK;
}

// ---------------------------------------------------------------------------
// grpc.health.v1.Health.

grpc::Status InMemoryBackend::Check(CallContext* call,
                                    const HealthCheckRequest& request,
                                    HealthCheckResponse* response) {
  std::optional<HealthState::ServingStatus> status =
      health_->GetStatus(request.service());
  if (!status.has_value()) {
    return NotFound(
        absl::StrCat("unknown service \"", request.service(), "\""));
  }
  response->set_status(*status);
  return grpc::Status::OK;
}

grpc::Status InMemoryBackend::Watch(CallContext* call,
                                    const HealthCheckRequest& request,
                                    ServerStream<HealthCheckResponse>* stream) {
  const auto effective = [](const HealthState::Observation& observation) {
    return observation.status.value_or(HealthCheckResponse::SERVICE_UNKNOWN);
  };
  HealthState::Observation observation = health_->Observe(request.service());
  HealthCheckResponse response;
  response.set_status(effective(observation));
  if (!stream->Write(response)) return StreamBroken();
  while (true) {
    if (call->IsDone()) return CallEnded(*call);
    if (health_->is_shut_down()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "the server is shutting down");
    }
    observation = health_->WaitForChange(
        request.service(), observation.version,
        std::max(absl::ZeroDuration(), call->NextDoneCheck() - absl::Now()));
    // Only real changes are sent, as gRPC's own health service does.
    if (effective(observation) != response.status()) {
      response.set_status(effective(observation));
      if (!stream->Write(response)) return StreamBroken();
    }
  }
}

}  // namespace fake
}  // namespace workflows
