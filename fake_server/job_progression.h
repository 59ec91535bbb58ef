#ifndef WORKFLOWS_FAKE_SERVER_JOB_PROGRESSION_H_
#define WORKFLOWS_FAKE_SERVER_JOB_PROGRESSION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "proto/job.pb.h"

namespace workflows {
namespace fake {

// JobProgression says how a fake job moves through its stages: QUEUED,
// PREPARING, RUNNING, SAVING, then SUCCEEDED, each stage lasting
// `stage_duration` of the backend's clock; or, when `fail_in_stage` is set,
// `end_stage` instead of leaving that stage: FAILED with `error_code` and
// `error_message`, or CANCELLED. A zero `stage_duration` runs the job to its
// end at once.
//
//   // Reaches RUNNING after 2 s, then fails with ERROR_OOM at 3 s.
//   JobProgression p = JobProgression::FailIn(
//       Job::RUNNING, descarteslabs::workflows::ERROR_OOM, "out of memory");
//   // Moves only when the test calls InMemoryBackend::AdvanceJob.
//   JobProgression manual = JobProgression::Manual();
//   // Cancelled (as if by someone else) when it would leave PREPARING.
//   JobProgression cancelled = JobProgression::CancelIn(Job::PREPARING);
struct JobProgression {
  // Clock time spent in each non-terminal stage. absl::InfiniteDuration()
  // means the job only moves when stepped explicitly.
  absl::Duration stage_duration = absl::Seconds(1);

  // The stage in which the job ends early (QUEUED..SAVING); UNSPECIFIED
  // means it succeeds.
  descarteslabs::workflows::Job::Stage fail_in_stage =
      descarteslabs::workflows::Job::UNSPECIFIED;
  // The stage entered instead of leaving `fail_in_stage`: FAILED (with
  // `error_code` and `error_message`) or CANCELLED (no error, like a job
  // cancelled through CancelJob).
  descarteslabs::workflows::Job::Stage end_stage =
      descarteslabs::workflows::Job::FAILED;
  descarteslabs::workflows::ErrorCode error_code =
      descarteslabs::workflows::ERROR_UNKNOWN;
  std::string error_message = "job failed";

  // Number of tasks reported in Job.State.tasks_progress.
  uint32_t num_tasks = 4;

  // A job that succeeds, one stage per `stage_duration`.
  static JobProgression Succeed(
      absl::Duration stage_duration = absl::Seconds(1));
  // A job that only moves when stepped (InMemoryBackend::AdvanceJob).
  static JobProgression Manual();
  // A job that fails with `code` and `message` when it would leave `stage`.
  static JobProgression FailIn(
      descarteslabs::workflows::Job::Stage stage,
      descarteslabs::workflows::ErrorCode code, std::string message,
      absl::Duration stage_duration = absl::Seconds(1));
  // A job that is CANCELLED when it would leave `stage`.
  static JobProgression CancelIn(
      descarteslabs::workflows::Job::Stage stage,
      absl::Duration stage_duration = absl::Seconds(1));
};

// True for SUCCEEDED, FAILED and CANCELLED.
bool IsTerminalStage(descarteslabs::workflows::Job::Stage stage);

// JobTimeline is the state machine of one job: it records every state the
// job has reached, so that watchers can be sent each change even when the
// clock jumps several stages at once. Not thread-safe; the owner locks.
//
//   JobTimeline timeline(JobProgression(), Job::QUEUED, clock->Now());
//   timeline.AdvanceTo(clock->Now() + absl::Seconds(2));
//   timeline.current().stage();  // RUNNING
//   timeline.history().size();   // 3: QUEUED, PREPARING, RUNNING
class JobTimeline {
 public:
  // Starts in `initial_stage` (UNSPECIFIED is taken as QUEUED) at `start`.
  JobTimeline(JobProgression progression,
              descarteslabs::workflows::Job::Stage initial_stage,
              absl::Time start);
  // Starts from a given state (e.g. a seeded job); an UNSPECIFIED stage is
  // taken as QUEUED and a zero timestamp as `start`.
  JobTimeline(JobProgression progression,
              descarteslabs::workflows::Job::State initial, absl::Time start);

  // Applies every automatic transition due at or before `now`: at most
  // kMaxTransitions, whatever `now` is (absl::InfiniteFuture() included),
  // so the work done under the backend's lock is bounded.
  void AdvanceTo(absl::Time now);

  // QUEUED -> PREPARING -> RUNNING -> SAVING -> SUCCEEDED is the longest
  // chain of automatic transitions.
  static constexpr int kMaxTransitions = 4;

  // Moves one stage at `now` (after applying due transitions). Returns false
  // if the job is already terminal.
  bool Step(absl::Time now);

  // Moves to CANCELLED at `now`. Returns false if the job is already terminal.
  bool Cancel(absl::Time now);

  // Moves through every remaining stage at `now` (after applying due
  // transitions), to the stage its progression ends in. Returns false if the
  // job is already terminal.
  bool StepToEnd(absl::Time now);

  // Runs this job's own clock `ahead` in front of `now`: the transitions its
  // progression would make in that time happen now (stamped `now`), and the
  // stage it ends in has `ahead` less of its duration left. A manual
  // progression does not move. Returns false if the job is already terminal.
  bool Skip(absl::Duration ahead, absl::Time now);

  // Replaces the progression from now on; the current stage is kept and its
  // duration restarts at `now`.
  void SetProgression(JobProgression progression, absl::Time now);

  const descarteslabs::workflows::Job::State& current() const {
    return history_.back();
  }
  // Every state reached, oldest first; never empty.
  const std::vector<descarteslabs::workflows::Job::State>& history() const {
    return history_;
  }
  bool terminal() const { return IsTerminalStage(current().stage()); }

  // When the next automatic transition happens; InfiniteFuture if none (a
  // terminal job, a manual progression, or a time past absl's range).
  absl::Time next_transition() const;

 private:
  // The stage an automatic transition (or Step) leaves `stage` for.
  descarteslabs::workflows::Job::Stage AutomaticNext(
      descarteslabs::workflows::Job::Stage stage) const;

  void Enter(descarteslabs::workflows::Job::Stage stage, absl::Time at);

  JobProgression progression_;
  absl::Time stage_started_;
  std::vector<descarteslabs::workflows::Job::State> history_;
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_JOB_PROGRESSION_H_
