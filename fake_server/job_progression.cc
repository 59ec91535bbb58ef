#include "fake_server/job_progression.h"

#include <utility>

namespace workflows {
namespace fake {

using ::descarteslabs::workflows::ErrorCode;
using ::descarteslabs::workflows::Job;

JobProgression JobProgression::Succeed(absl::Duration stage_duration) {
  JobProgression progression;
  progression.stage_duration = stage_duration;
  return progression;
}

JobProgression JobProgression::Manual() {
  return Succeed(absl::InfiniteDuration());
}

JobProgression JobProgression::FailIn(Job::Stage stage, ErrorCode code,
                                      std::string message,
                                      absl::Duration stage_duration) {
  JobProgression progression;
  progression.stage_duration = stage_duration;
  progression.fail_in_stage = stage;
  progression.error_code = code;
  progression.error_message = std::move(message);
  return progression;
}

JobProgression JobProgression::CancelIn(Job::Stage stage,
                                        absl::Duration stage_duration) {
  JobProgression progression;
  progression.stage_duration = stage_duration;
  progression.fail_in_stage = stage;
  progression.end_stage = Job::CANCELLED;
  return progression;
}

bool IsTerminalStage(Job::Stage stage) {
  return stage == Job::SUCCEEDED || stage == Job::FAILED ||
         stage == Job::CANCELLED;
}

namespace {

Job::Stage NextStage(Job::Stage stage) {
  switch (stage) {
    case Job::UNSPECIFIED:
    case Job::QUEUED:
      return Job::PREPARING;
    case Job::PREPARING:
      return Job::RUNNING;
    case Job::RUNNING:
      return Job::SAVING;
    case Job::SAVING:
      return Job::SUCCEEDED;
    default:
      return stage;
  }
}

// Plausible counters: all tasks wait while queued, become ready while the job
// prepares, half of them run while the other half finish during RUNNING, and
// all are finished from SAVING on. Terminal failures keep the last counters.
void FillTasksProgress(Job::Stage stage, uint32_t tasks,
                       Job::TasksProgress* progress) {
  uint32_t waiting = 0, ready = 0, running = 0, finished = 0;
  switch (stage) {
    case Job::QUEUED:
      waiting = tasks;
      break;
    case Job::PREPARING:
      ready = tasks;
      break;
    case Job::RUNNING:
      running = tasks - tasks / 2;
      finished = tasks / 2;
      break;
    default:
      finished = tasks;
      break;
  }
  progress->mutable_waiting()->set_value(waiting);
  progress->mutable_ready()->set_value(ready);
  progress->mutable_running()->set_value(running);
  progress->mutable_finished()->set_value(finished);
}

}  // namespace

JobTimeline::JobTimeline(JobProgression progression, Job::Stage initial_stage,
                         absl::Time start)
    : progression_(std::move(progression)) {
  Enter(initial_stage == Job::UNSPECIFIED ? Job::QUEUED : initial_stage, start);
}

JobTimeline::JobTimeline(JobProgression progression, Job::State initial,
                         absl::Time start)
    : progression_(std::move(progression)) {
  if (initial.stage() == Job::UNSPECIFIED) {
    Enter(Job::QUEUED, start);
    return;
  }
  if (initial.timestamp() == 0)
    initial.set_timestamp(absl::ToUnixMillis(start));
  history_.push_back(std::move(initial));
  stage_started_ = start;
}

void JobTimeline::Enter(Job::Stage stage, absl::Time at) {
  Job::State state;
  state.set_stage(stage);
  state.set_timestamp(absl::ToUnixMillis(at));
  if (stage == Job::FAILED || stage == Job::CANCELLED) {
    if (!history_.empty() && history_.back().has_tasks_progress()) {
      *state.mutable_tasks_progress() = history_.back().tasks_progress();
    }
  } else {
    FillTasksProgress(stage, progression_.num_tasks,
                      state.mutable_tasks_progress());
  }
  if (stage == Job::FAILED) {
    state.mutable_error()->set_code(progression_.error_code);
    state.mutable_error()->set_message(progression_.error_message);
  }
  history_.push_back(std::move(state));
  stage_started_ = at;
}

Job::Stage JobTimeline::AutomaticNext(Job::Stage stage) const {
  if (stage != progression_.fail_in_stage) return NextStage(stage);
  return progression_.end_stage == Job::CANCELLED ? Job::CANCELLED
                                                  : Job::FAILED;
}

absl::Time JobTimeline::next_transition() const {
  const Job::Stage stage = current().stage();
  // A stage NextStage does not know (a seeded job's unknown enum value)
  // would "move" to itself forever: it has no automatic transition.
  if (terminal() || AutomaticNext(stage) == stage ||
      progression_.stage_duration == absl::InfiniteDuration()) {
    return absl::InfiniteFuture();
  }
  // Saturates to InfiniteFuture when the clock is near absl's end of time;
  // that means "never", not "due at any time".
  return stage_started_ + progression_.stage_duration;
}

void JobTimeline::AdvanceTo(absl::Time now) {
  // Each transition enters a later stage, so there are at most
  // kMaxTransitions however far `now` is; the cap keeps that true even if a
  // stage ever mapped to an earlier one. InfiniteFuture is never due, even
  // when `now` is InfiniteFuture too.
  for (int transitions = 0; transitions < kMaxTransitions; ++transitions) {
    const absl::Time next = next_transition();
    if (next == absl::InfiniteFuture() || next > now) return;
    Enter(AutomaticNext(current().stage()), next);
  }
}

bool JobTimeline::Step(absl::Time now) {
  AdvanceTo(now);
  if (terminal()) return false;
  Enter(AutomaticNext(current().stage()), now);
  return true;
}

bool JobTimeline::Cancel(absl::Time now) {
  AdvanceTo(now);
  if (terminal()) return false;
  Enter(Job::CANCELLED, now);
  return true;
}

bool JobTimeline::StepToEnd(absl::Time now) {
  AdvanceTo(now);
  if (terminal()) return false;
  // Each step enters a later stage, so kMaxTransitions + 1 steps (from
  // QUEUED) always suffice; a seeded stage the progression does not know
  // has no next stage and stays.
  for (int steps = 0; steps <= kMaxTransitions && !terminal(); ++steps) {
    const Job::Stage next = AutomaticNext(current().stage());
    if (next == current().stage()) break;
    Enter(next, now);
  }
  return true;
}

bool JobTimeline::Skip(absl::Duration ahead, absl::Time now) {
  AdvanceTo(now);
  if (terminal()) return false;
  if (ahead <= absl::ZeroDuration() ||
      progression_.stage_duration == absl::InfiniteDuration()) {
    return true;
  }
  // On the job's own clock it is `job_now`, and the current stage began at
  // `job_stage_start` (the clocks agreed until now). Saturates to
  // InfiniteFuture, which runs the job to its end.
  const absl::Time job_now = now + ahead;
  absl::Time job_stage_start = stage_started_;
  for (int transitions = 0; transitions < kMaxTransitions; ++transitions) {
    const Job::Stage next_stage = AutomaticNext(current().stage());
    if (terminal() || next_stage == current().stage()) break;
    const absl::Time next = job_stage_start + progression_.stage_duration;
    if (next == absl::InfiniteFuture() || next > job_now) break;
    Enter(next_stage, now);  // Stamped now: it happens now for everyone else.
    job_stage_start = next;
  }
  // Back on the backend's clock, the stage it is in began `ahead` earlier;
  // never later than `now`, since job_stage_start <= job_now.
  stage_started_ = job_stage_start - ahead;
  return true;
}

void JobTimeline::SetProgression(JobProgression progression, absl::Time now) {
  AdvanceTo(now);
  progression_ = std::move(progression);
  stage_started_ = now;
}

}  // namespace fake
}  // namespace workflows
