#ifndef WORKFLOWS_FAKE_SERVER_IN_MEMORY_BACKEND_H_
#define WORKFLOWS_FAKE_SERVER_IN_MEMORY_BACKEND_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/backend.h"
#include "fake_server/health_state.h"
#include "fake_server/job_progression.h"

namespace workflows {
namespace fake {

// Who is calling, as the in-memory backend sees it. It stamps user/org on the
// workflows, jobs and XYZs a call creates, and ListXYZ lists the caller's own.
// A request with `x-on-behalf-of-user: <email>` acts as that user (email and
// user set to the value, org kept); others act as the configured default.
struct Identity {
  std::string email = "test@example.com";
  std::string user = "user-1";
  std::string org = "org-1";
};

// InMemoryBackend is the realistic default behaviour of the fake Workflows
// server: workflows with versioned grafts, jobs that progress through their
// stages on an injected clock, XYZ tiles with appendable session logs, access
// grants and grpc.health.v1. Everything lives in memory per instance;
// methods are thread-safe and every blocking stream (WatchJob,
// GetXYZSessionLogs, Watch) returns promptly once the call is done.
//
//   auto clock = std::make_shared<workflows::SimulatedClock>();
//   InMemoryBackend::Options options;
//   options.clock = clock;
//   InMemoryBackend backend(options);
//   backend.SetNextJobProgression(JobProgression::FailIn(
//       Job::RUNNING, descarteslabs::workflows::ERROR_OOM, "out of memory"));
//   // ... a client creates a job through the server ...
//   clock->AdvanceBy(absl::Seconds(3));  // the job is now FAILED
class InMemoryBackend : public Backend {
 public:
  struct Options {
    // Drives job progression and all timestamps. A SimulatedClock also wakes
    // watchers whenever it advances.
    std::shared_ptr<Clock> clock = Clock::Real();
    // Progression of jobs created without a more specific one.
    JobProgression default_progression;
    // Caller identity when the request has no `x-on-behalf-of-user`.
    Identity identity;
    // Health statuses served by Check/Watch; created (with "" SERVING) if null.
    std::shared_ptr<HealthState> health;
    // Root of every URL the backend makes up (tiles, WMTS, job results).
    std::string url_base = "https://workflows.fake.invalid";
    // Expiration of XYZs created with days_to_expiration == 0.
    uint32_t default_xyz_days_to_expiration = 10;
    // Expiration of job results, from creation.
    absl::Duration job_expiration = absl::Hours(24);
  };

  InMemoryBackend();
  explicit InMemoryBackend(Options options);
  ~InMemoryBackend() override;
  InMemoryBackend(const InMemoryBackend&) = delete;
  InMemoryBackend& operator=(const InMemoryBackend&) = delete;

  // --- Seeding and inspection, for tests and scenario files. ---

  // Stores `workflow` as is (email and name are filled from the id when
  // empty). INVALID_ARGUMENT if the id is not "email:name".
  absl::Status PutWorkflow(descarteslabs::workflows::Workflow workflow);
  // Stores `job` in its current stage (QUEUED when unset); it progresses from
  // now on with `progression` or the default one. Assigns an id when empty and
  // returns the id.
  std::string PutJob(descarteslabs::workflows::Job job,
                     std::optional<JobProgression> progression = std::nullopt);
  // Stores `xyz` as is; assigns an id when empty and returns the id.
  std::string PutXYZ(descarteslabs::workflows::XYZ xyz);
  // Stores `xyz` as CreateXYZ would have made it for the default identity:
  // fills an empty id, user, org, created/updated timestamps,
  // expires_timestamp, url_template and wmts_url_template, and keeps the
  // rest. Returns the id. (Scenario seeds use it.)
  std::string SeedXYZ(descarteslabs::workflows::XYZ xyz);
  // Stores `grant` as CreateAccessGrant does (a grant already there is
  // kept); unset create_time/update_time are set from the clock.
  // INVALID_ARGUMENT naming the missing or bad field, as CreateAccessGrant
  // reports it (e.g. "entity.type \"team\" must be ...").
  absl::Status PutAccessGrant(
      descarteslabs::discover::v0alpha::AccessGrant grant);
  // Appends a session log record to XYZ `xyz_id`; open GetXYZSessionLogs
  // streams send it if it matches their filter. A zero record timestamp is
  // set from the clock. NOT_FOUND if the XYZ does not exist.
  absl::Status AppendXYZLog(const std::string& xyz_id,
                            descarteslabs::workflows::XYZLogRecord record);
  // Forgets every workflow, job, XYZ, log and grant and resets progressions;
  // health statuses are reset too.
  void Reset();

  // Progression of jobs created from now on, unless overridden.
  void SetDefaultJobProgression(JobProgression progression);
  // Progression of the next created job only (a queue: each call adds one).
  void SetNextJobProgression(JobProgression progression);
  // Replaces the progression of an existing job from now on. NOT_FOUND if
  // unknown.
  absl::Status SetJobProgression(const std::string& job_id,
                                 JobProgression progression);
  // Moves the job one stage now, whatever its progression. NOT_FOUND if
  // unknown, FAILED_PRECONDITION if already terminal.
  absl::Status AdvanceJob(const std::string& job_id);
  // Moves the job through every remaining stage now, to the stage its
  // progression ends in (SUCCEEDED, or FAILED/CANCELLED for a FailIn or
  // CancelIn progression). Errors as AdvanceJob.
  absl::Status AdvanceJobToEnd(const std::string& job_id);
  // Runs this job's progression `duration` ahead of the clock (see
  // JobTimeline::Skip): the stages it would reach in that time are entered
  // now, and its current stage has that much less left. Other jobs and the
  // clock are untouched; a Manual() job does not move. Errors as
  // AdvanceJob, and INVALID_ARGUMENT for a negative duration.
  absl::Status AdvanceJobBy(const std::string& job_id, absl::Duration duration);

  std::optional<descarteslabs::workflows::Job::State> GetJobState(
      const std::string& job_id) const;
  // Every state the job went through, oldest first.
  std::vector<descarteslabs::workflows::Job::State> GetJobHistory(
      const std::string& job_id) const;
  std::optional<descarteslabs::workflows::Job> FindJob(
      const std::string& job_id) const;
  std::vector<std::string> JobIds() const;
  std::optional<descarteslabs::workflows::Workflow> FindWorkflow(
      const std::string& id) const;
  std::optional<descarteslabs::workflows::XYZ> FindXYZ(
      const std::string& xyz_id) const;
  std::vector<descarteslabs::discover::v0alpha::AccessGrant> AccessGrantsFor(
      const std::string& asset_name) const;

  HealthState& health() { return *health_; }
  const std::shared_ptr<HealthState>& shared_health() const { return health_; }
  Clock& clock() { return *clock_; }

  // The identity a call acts as.
  Identity CallerIdentity(const CallContext& call) const;

  // Wakes every blocked stream so it re-checks CallContext::IsDone(); call it
  // when shutting the server down. Blocked streams do not poll: they wake on
  // changes, on their job's next stage (real clock) and at
  // CallContext::NextDoneCheck(), so without this they notice shutdown only
  // that late.
  void WakeAll();

  // --- Backend ---
  // Behaviour worth knowing when writing tests against it:
  // - Ids are "job-000001", "xyz-000002", ... (one counter per backend).
  // - UpsertWorkflow replaces title, description, labels and tags, and merges
  //   versioned grafts by version (keeping each version's creation time).
  // - SearchWorkflows, ListJobs and ListXYZ stream in a stable order (workflow
  //   id; creation order).
  // - ListJobs keeps jobs with start_datetime <= timestamp <= end_datetime;
  //   bounds are RFC 3339, or a date-time without offset (UTC), or a date.
  // - WatchJob sends the current state, then every state reached (one message
  //   per stage even if the clock jumps several stages), and ends OK at a
  //   terminal stage; ABORTED if Reset() removes the job meanwhile.
  // - GetXYZSessionLogs sends matching records and stays open for appended
  //   ones until the call is done.
  // - CreateAccessGrant is idempotent; grants are keyed by asset, entity type,
  //   entity id and access. ListAccessGrants page tokens are offsets.
  // - Watch sends SERVICE_UNKNOWN for unknown services and stays open; it ends
  //   UNAVAILABLE once the HealthState is shut down.
  grpc::Status UpsertWorkflow(
      CallContext* call,
      const descarteslabs::workflows::UpsertWorkflowRequest& request,
      descarteslabs::workflows::Workflow* response) override;
  grpc::Status GetWorkflow(
      CallContext* call,
      const descarteslabs::workflows::GetWorkflowRequest& request,
      descarteslabs::workflows::Workflow* response) override;
  grpc::Status GetVersion(
      CallContext* call,
      const descarteslabs::workflows::GetVersionRequest& request,
      descarteslabs::workflows::VersionedGraft* response) override;
  grpc::Status SearchWorkflows(
      CallContext* call,
      const descarteslabs::workflows::SearchWorkflowsRequest& request,
      ServerStream<descarteslabs::workflows::Workflow>* stream) override;
  grpc::Status DeleteWorkflow(
      CallContext* call,
      const descarteslabs::workflows::DeleteWorkflowRequest& request,
      descarteslabs::workflows::Empty* response) override;
  grpc::Status GetWmtsUrlTemplate(
      CallContext* call, const descarteslabs::workflows::Empty& request,
      descarteslabs::workflows::WmtsUrlTemplateResponse* response) override;

  grpc::Status CreateJob(
      CallContext* call,
      const descarteslabs::workflows::CreateJobRequest& request,
      descarteslabs::workflows::Job* response) override;
  grpc::Status ListJobs(
      CallContext* call,
      const descarteslabs::workflows::ListJobsRequest& request,
      ServerStream<descarteslabs::workflows::Job>* stream) override;
  grpc::Status GetJob(CallContext* call,
                      const descarteslabs::workflows::GetJobRequest& request,
                      descarteslabs::workflows::Job* response) override;
  grpc::Status CancelJob(
      CallContext* call,
      const descarteslabs::workflows::CancelJobRequest& request,
      descarteslabs::workflows::CancelJobResponse* response) override;
  grpc::Status WatchJob(
      CallContext* call,
      const descarteslabs::workflows::WatchJobRequest& request,
      ServerStream<descarteslabs::workflows::Job::State>* stream) override;

  grpc::Status CreateXYZ(
      CallContext* call,
      const descarteslabs::workflows::CreateXYZRequest& request,
      descarteslabs::workflows::XYZ* response) override;
  grpc::Status GetXYZ(CallContext* call,
                      const descarteslabs::workflows::GetXYZRequest& request,
                      descarteslabs::workflows::XYZ* response) override;
  grpc::Status ListXYZ(
      CallContext* call,
      const descarteslabs::workflows::ListXYZRequest& request,
      ServerStream<descarteslabs::workflows::XYZ>* stream) override;
  grpc::Status DeleteXYZ(
      CallContext* call,
      const descarteslabs::workflows::DeleteXYZRequest& request,
      google::protobuf::Empty* response) override;
  grpc::Status GetXYZSessionLogs(
      CallContext* call,
      const descarteslabs::workflows::GetXYZSessionLogsRequest& request,
      ServerStream<descarteslabs::workflows::XYZLogRecord>* stream) override;

  grpc::Status CreateAccessGrant(
      CallContext* call,
      const descarteslabs::discover::v0alpha::CreateAccessGrantRequest& request,
      descarteslabs::discover::v0alpha::CreateAccessGrantResponse* response)
      override;
  grpc::Status DeleteAccessGrant(
      CallContext* call,
      const descarteslabs::discover::v0alpha::DeleteAccessGrantRequest& request,
      descarteslabs::discover::v0alpha::DeleteAccessGrantResponse* response)
      override;
  grpc::Status ListAccessGrants(
      CallContext* call,
      const descarteslabs::discover::v0alpha::ListAccessGrantsRequest& request,
      descarteslabs::discover::v0alpha::ListAccessGrantsResponse* response)
      override;
  grpc::Status ListAccessGrantsStream(
      CallContext* call,
      const descarteslabs::discover::v0alpha::ListAccessGrantsStreamRequest&
          request,
      ServerStream<
          descarteslabs::discover::v0alpha::ListAccessGrantsStreamResponse>*
          stream) override;
  grpc::Status ReplaceAccessGrant(
      CallContext* call,
      const descarteslabs::discover::v0alpha::ReplaceAccessGrantRequest&
          request,
      descarteslabs::discover::v0alpha::ReplaceAccessGrantResponse* response)
      override;

  grpc::Status Check(CallContext* call,
                     const grpc::health::v1::HealthCheckRequest& request,
                     grpc::health::v1::HealthCheckResponse* response) override;
  grpc::Status Watch(
      CallContext* call, const grpc::health::v1::HealthCheckRequest& request,
      ServerStream<grpc::health::v1::HealthCheckResponse>* stream) override;

 private:
  // Wakes blocked streams when state or (simulated) time changes. Shared with
  // the clock observer so that a late observer call after destruction is
  // harmless.
  class ChangeSignal;

  struct JobRecord {
    descarteslabs::workflows::Job job;  // Without state; see JobLocked.
    JobTimeline timeline;
    int64_t sequence;
  };
  struct XYZRecord {
    descarteslabs::workflows::XYZ xyz;
    int64_t sequence;
  };
  // (asset_name, entity type, entity id, access)
  using GrantKey =
      std::tuple<std::string, std::string, std::string, std::string>;

  absl::Time Now() const { return clock_->Now(); }
  // Applies due transitions and returns the job with its current state.
  descarteslabs::workflows::Job JobLocked(JobRecord& record) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  JobRecord* FindJobLocked(const std::string& id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NextIdLocked(absl::string_view prefix)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves job `job_id` with `move` (a JobTimeline step that returns false
  // when the job has already finished) and wakes its watchers. The errors
  // of AdvanceJob.
  absl::Status MoveJob(const std::string& job_id,
                       absl::FunctionRef<bool(JobTimeline&, absl::Time)> move);
  void FillWorkflowUrls(descarteslabs::workflows::Workflow* workflow) const;

  const std::shared_ptr<Clock> clock_;
  const std::shared_ptr<HealthState> health_;
  const Identity default_identity_;
  const std::string url_base_;
  const uint32_t default_xyz_days_to_expiration_;
  const absl::Duration job_expiration_;
  const std::shared_ptr<ChangeSignal> signal_;
  int clock_observer_id_ = -1;

  mutable absl::Mutex mu_;
  JobProgression initial_default_progression_ ABSL_GUARDED_BY(mu_);
  JobProgression default_progression_ ABSL_GUARDED_BY(mu_);
  std::vector<JobProgression> next_progressions_ ABSL_GUARDED_BY(mu_);
  int64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, descarteslabs::workflows::Workflow> workflows_
      ABSL_GUARDED_BY(mu_);
  // Mutable: reading a job applies its due transitions first.
  mutable std::map<std::string, JobRecord> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, XYZRecord> xyzs_ ABSL_GUARDED_BY(mu_);
  // Kept apart from xyzs_ so that open log streams survive a delete.
  std::map<std::string, std::vector<descarteslabs::workflows::XYZLogRecord>>
      xyz_logs_ ABSL_GUARDED_BY(mu_);
  std::map<GrantKey, descarteslabs::discover::v0alpha::AccessGrant> grants_
      ABSL_GUARDED_BY(mu_);
  // Bumped by Reset() so that open streams notice their data is gone.
  int64_t reset_count_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_IN_MEMORY_BACKEND_H_
