#include "fake_server/job_progression.h"

#include <cstdint>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace fake {
namespace {

using ::descarteslabs::workflows::ERROR_OOM;
using ::descarteslabs::workflows::Job;
using ::testing::ElementsAre;

const absl::Time kStart = absl::FromUnixSeconds(1767225600);

std::vector<Job::Stage> Stages(const JobTimeline& timeline) {
  std::vector<Job::Stage> stages;
  for (const Job::State& state : timeline.history()) {
    stages.push_back(state.stage());
  }
  return stages;
}

TEST(JobTimelineTest, SucceedsOneStagePerDuration) {
  JobTimeline timeline(JobProgression(), Job::QUEUED, kStart);
  EXPECT_EQ(timeline.current().stage(), Job::QUEUED);
  EXPECT_EQ(timeline.next_transition(), kStart + absl::Seconds(1));
  timeline.AdvanceTo(kStart + absl::Milliseconds(999));
  EXPECT_EQ(timeline.current().stage(), Job::QUEUED);
  timeline.AdvanceTo(kStart + absl::Seconds(2));
  EXPECT_EQ(timeline.current().stage(), Job::RUNNING);
  timeline.AdvanceTo(kStart + absl::Hours(1));
  EXPECT_THAT(Stages(timeline),
              ElementsAre(Job::QUEUED, Job::PREPARING, Job::RUNNING,
                          Job::SAVING, Job::SUCCEEDED));
  EXPECT_TRUE(timeline.terminal());
  EXPECT_EQ(timeline.next_transition(), absl::InfiniteFuture());
  // Each state is stamped with the time it was reached, not observed.
  EXPECT_EQ(timeline.history()[2].timestamp(),
            absl::ToUnixMillis(kStart + absl::Seconds(2)));
  EXPECT_EQ(timeline.current().tasks_progress().finished().value(), 4u);
}

TEST(JobTimelineTest, TasksProgressIsPlausible) {
  JobProgression progression;
  progression.num_tasks = 10;
  JobTimeline timeline(progression, Job::QUEUED, kStart);
  EXPECT_EQ(timeline.current().tasks_progress().waiting().value(), 10u);
  timeline.AdvanceTo(kStart + absl::Seconds(2));
  const Job::TasksProgress& running = timeline.current().tasks_progress();
  EXPECT_EQ(running.running().value() + running.finished().value(), 10u);
  EXPECT_GT(running.finished().value(), 0u);
}

TEST(JobTimelineTest, FailsInTheScriptedStageWithError) {
  JobTimeline timeline(
      JobProgression::FailIn(Job::RUNNING, ERROR_OOM, "out of memory"),
      Job::QUEUED, kStart);
  timeline.AdvanceTo(kStart + absl::Seconds(10));
  EXPECT_THAT(Stages(timeline), ElementsAre(Job::QUEUED, Job::PREPARING,
                                            Job::RUNNING, Job::FAILED));
  EXPECT_EQ(timeline.current().error().code(), ERROR_OOM);
  EXPECT_EQ(timeline.current().error().message(), "out of memory");
  EXPECT_FALSE(timeline.history()[2].has_error());
}

TEST(JobTimelineTest, CancelInEndsCancelledWithoutAnError) {
  JobTimeline timeline(JobProgression::CancelIn(Job::PREPARING), Job::QUEUED,
                       kStart);
  timeline.AdvanceTo(kStart + absl::Milliseconds(1999));
  EXPECT_EQ(timeline.current().stage(), Job::PREPARING);
  timeline.AdvanceTo(kStart + absl::Seconds(2));
  EXPECT_THAT(Stages(timeline),
              ElementsAre(Job::QUEUED, Job::PREPARING, Job::CANCELLED));
  EXPECT_TRUE(timeline.terminal());
  EXPECT_FALSE(timeline.current().has_error());
  EXPECT_EQ(timeline.current().timestamp(),
            absl::ToUnixMillis(kStart + absl::Seconds(2)));
  // The counters stay where PREPARING left them.
  EXPECT_EQ(timeline.current().tasks_progress().ready().value(), 4u);
  timeline.AdvanceTo(kStart + absl::Hours(1));
  EXPECT_EQ(timeline.history().size(), 3u);
}

TEST(JobTimelineTest, CancelInTheFirstAndLastRunningStages) {
  JobTimeline queued(JobProgression::CancelIn(Job::QUEUED), Job::QUEUED,
                     kStart);
  queued.AdvanceTo(kStart + absl::Seconds(1));
  EXPECT_THAT(Stages(queued), ElementsAre(Job::QUEUED, Job::CANCELLED));
  JobTimeline saving(JobProgression::CancelIn(Job::SAVING), Job::QUEUED,
                     kStart);
  saving.AdvanceTo(kStart + absl::Hours(1));
  EXPECT_THAT(Stages(saving),
              ElementsAre(Job::QUEUED, Job::PREPARING, Job::RUNNING,
                          Job::SAVING, Job::CANCELLED));
}

TEST(JobTimelineTest, StepToEndFollowsTheProgressionToItsEnd) {
  JobTimeline cancelled(JobProgression::CancelIn(Job::RUNNING), Job::QUEUED,
                        kStart);
  EXPECT_TRUE(cancelled.StepToEnd(kStart + absl::Milliseconds(10)));
  EXPECT_THAT(Stages(cancelled), ElementsAre(Job::QUEUED, Job::PREPARING,
                                             Job::RUNNING, Job::CANCELLED));
  for (const Job::State& state : cancelled.history()) {
    if (state.stage() == Job::QUEUED) continue;
    EXPECT_EQ(state.timestamp(),
              absl::ToUnixMillis(kStart + absl::Milliseconds(10)));
  }
  EXPECT_FALSE(cancelled.StepToEnd(kStart + absl::Seconds(1)));

  JobTimeline manual(JobProgression::Manual(), Job::QUEUED, kStart);
  EXPECT_TRUE(manual.StepToEnd(kStart));
  EXPECT_EQ(manual.current().stage(), Job::SUCCEEDED);
  EXPECT_EQ(manual.history().size(), 5u);

  Job::State unknown;
  unknown.set_stage(static_cast<Job::Stage>(42));
  JobTimeline seeded(JobProgression(), unknown, kStart);
  EXPECT_TRUE(seeded.StepToEnd(kStart));
  EXPECT_EQ(seeded.history().size(), 1u);
}

TEST(JobTimelineTest, SkipRunsTheJobsOwnClockAhead) {
  JobTimeline timeline(JobProgression(), Job::QUEUED, kStart);
  // At 0.2 s, 2.5 s more of the job's clock make it 2.7 s into its life:
  // PREPARING and RUNNING are entered now, with 0.3 s of RUNNING left.
  const absl::Time now = kStart + absl::Milliseconds(200);
  EXPECT_TRUE(timeline.Skip(absl::Milliseconds(2500), now));
  EXPECT_THAT(Stages(timeline),
              ElementsAre(Job::QUEUED, Job::PREPARING, Job::RUNNING));
  EXPECT_EQ(timeline.current().timestamp(), absl::ToUnixMillis(now));
  EXPECT_EQ(timeline.next_transition(), now + absl::Milliseconds(300));
  // Less than what is left of the stage: only the time left shrinks.
  EXPECT_TRUE(timeline.Skip(absl::Milliseconds(200), now));
  EXPECT_EQ(timeline.current().stage(), Job::RUNNING);
  EXPECT_EQ(timeline.next_transition(), now + absl::Milliseconds(100));
  timeline.AdvanceTo(now + absl::Milliseconds(99));
  EXPECT_EQ(timeline.current().stage(), Job::RUNNING);
  timeline.AdvanceTo(now + absl::Milliseconds(100));
  EXPECT_EQ(timeline.current().stage(), Job::SAVING);
  // Far ahead: to the end, and no further.
  EXPECT_TRUE(timeline.Skip(absl::Hours(1), now + absl::Seconds(1)));
  EXPECT_EQ(timeline.current().stage(), Job::SUCCEEDED);
  EXPECT_FALSE(timeline.Skip(absl::Hours(1), now + absl::Seconds(1)));
}

TEST(JobTimelineTest, SkipNeverMovesAManualJob) {
  JobTimeline timeline(JobProgression::Manual(), Job::QUEUED, kStart);
  EXPECT_TRUE(timeline.Skip(absl::Hours(1000), kStart));
  EXPECT_THAT(Stages(timeline), ElementsAre(Job::QUEUED));
}

TEST(JobTimelineTest, ManualOnlyMovesWhenStepped) {
  JobTimeline timeline(JobProgression::Manual(), Job::QUEUED, kStart);
  timeline.AdvanceTo(kStart + absl::Hours(1000));
  EXPECT_EQ(timeline.current().stage(), Job::QUEUED);
  EXPECT_TRUE(timeline.Step(kStart + absl::Hours(1)));
  EXPECT_EQ(timeline.current().stage(), Job::PREPARING);
  EXPECT_EQ(timeline.current().timestamp(),
            absl::ToUnixMillis(kStart + absl::Hours(1)));
  for (int i = 0; i < 3; ++i) timeline.Step(kStart + absl::Hours(2));
  EXPECT_EQ(timeline.current().stage(), Job::SUCCEEDED);
  EXPECT_FALSE(timeline.Step(kStart + absl::Hours(3)));
}

TEST(JobTimelineTest, CancelIsTerminalAndRefusedWhenDone) {
  JobTimeline timeline(JobProgression(), Job::QUEUED, kStart);
  EXPECT_TRUE(timeline.Cancel(kStart + absl::Milliseconds(1500)));
  EXPECT_THAT(Stages(timeline),
              ElementsAre(Job::QUEUED, Job::PREPARING, Job::CANCELLED));
  timeline.AdvanceTo(kStart + absl::Hours(1));
  EXPECT_EQ(timeline.current().stage(), Job::CANCELLED);
  EXPECT_FALSE(timeline.Cancel(kStart + absl::Hours(1)));
}

TEST(JobTimelineTest, SetProgressionAppliesDueTransitionsFirst) {
  JobTimeline timeline(JobProgression(), Job::QUEUED, kStart);
  timeline.SetProgression(JobProgression::Manual(),
                          kStart + absl::Milliseconds(1500));
  EXPECT_EQ(timeline.current().stage(), Job::PREPARING);
  timeline.AdvanceTo(kStart + absl::Hours(1));
  EXPECT_EQ(timeline.current().stage(), Job::PREPARING);
}

TEST(JobTimelineTest, StartsFromASeededState) {
  Job::State seeded;
  seeded.set_stage(Job::RUNNING);
  JobTimeline timeline(JobProgression(), seeded, kStart);
  EXPECT_EQ(timeline.current().timestamp(), absl::ToUnixMillis(kStart));
  timeline.AdvanceTo(kStart + absl::Seconds(2));
  EXPECT_THAT(Stages(timeline),
              ElementsAre(Job::RUNNING, Job::SAVING, Job::SUCCEEDED));
}

TEST(JobTimelineTest, ZeroDurationRunsToTheEndAtOnce) {
  JobTimeline timeline(JobProgression::Succeed(absl::ZeroDuration()),
                       Job::QUEUED, kStart);
  timeline.AdvanceTo(kStart);
  EXPECT_EQ(timeline.current().stage(), Job::SUCCEEDED);
}

// The clock at absl's end of time (AdvanceClock used to get it there) used
// to make every transition, terminal ones included, "due": AdvanceTo looped
// forever appending SUCCEEDED under the backend's lock.
TEST(JobTimelineTest, InfiniteFutureRunsToTheEndAndStops) {
  JobTimeline timeline(JobProgression(), Job::QUEUED, kStart);
  timeline.AdvanceTo(absl::InfiniteFuture());
  EXPECT_THAT(Stages(timeline),
              ElementsAre(Job::QUEUED, Job::PREPARING, Job::RUNNING,
                          Job::SAVING, Job::SUCCEEDED));
  timeline.AdvanceTo(absl::InfiniteFuture());
  EXPECT_EQ(timeline.history().size(), 5u);
}

TEST(JobTimelineTest, ManualProgressionNeverMovesEvenAtInfiniteFuture) {
  JobTimeline timeline(JobProgression::Manual(), Job::QUEUED, kStart);
  timeline.AdvanceTo(absl::InfiniteFuture());
  EXPECT_THAT(Stages(timeline), ElementsAre(Job::QUEUED));
  EXPECT_EQ(timeline.next_transition(), absl::InfiniteFuture());
}

TEST(JobTimelineTest, TransitionPastTheEndOfTimeIsNever) {
  // A stage that started so late that start + duration saturates.
  const absl::Time late =
      absl::UnixEpoch() + absl::Seconds(std::numeric_limits<int64_t>::max());
  JobTimeline timeline(JobProgression::Succeed(absl::Hours(1)), Job::QUEUED,
                       late);
  EXPECT_EQ(timeline.next_transition(), absl::InfiniteFuture());
  timeline.AdvanceTo(absl::InfiniteFuture());
  EXPECT_THAT(Stages(timeline), ElementsAre(Job::QUEUED));
}

TEST(JobTimelineTest, UnknownSeededStageHasNoAutomaticTransition) {
  // With 1 ns stages and 10,000 years to cover, stepping a stage that maps
  // to itself would take ~3e20 iterations.
  Job::State seeded;
  seeded.set_stage(static_cast<Job::Stage>(42));
  JobTimeline timeline(JobProgression::Succeed(absl::Nanoseconds(1)), seeded,
                       kStart);
  EXPECT_EQ(timeline.next_transition(), absl::InfiniteFuture());
  timeline.AdvanceTo(kStart + absl::Hours(24 * 365 * 10000));
  EXPECT_EQ(timeline.history().size(), 1u);
}

TEST(JobTimelineTest, AdvanceToDoesAtMostFourTransitions) {
  JobTimeline timeline(JobProgression::Succeed(absl::Nanoseconds(1)),
                       Job::QUEUED, kStart);
  timeline.AdvanceTo(kStart + absl::Hours(24 * 365 * 10000));
  EXPECT_EQ(timeline.history().size(),
            static_cast<size_t>(1 + JobTimeline::kMaxTransitions));
  EXPECT_TRUE(timeline.terminal());
}

}  // namespace
}  // namespace fake
}  // namespace workflows
