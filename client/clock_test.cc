#include "client/clock.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace {

using ::testing::ElementsAre;

TEST(SimulatedClockTest, SleepAdvancesAndRecordsWithoutBlocking) {
  SimulatedClock clock;
  const absl::Time start = clock.Now();
  clock.SleepFor(absl::Hours(24));
  clock.SleepFor(absl::Seconds(60));
  EXPECT_EQ(clock.Now() - start, absl::Hours(24) + absl::Seconds(60));
  EXPECT_THAT(clock.sleeps(), ElementsAre(absl::Hours(24), absl::Seconds(60)));
}

TEST(SimulatedClockTest, AdvanceNotifiesObserversButIsNotASleep) {
  SimulatedClock clock;
  std::vector<absl::Time> seen;
  const int id =
      clock.AddObserver([&](absl::Time now) { seen.push_back(now); });
  clock.AdvanceBy(absl::Seconds(1));
  clock.AdvanceBy(absl::Seconds(-5));  // Time never goes backwards.
  clock.RemoveObserver(id);
  clock.AdvanceBy(absl::Seconds(1));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], seen[1]);
  EXPECT_TRUE(clock.sleeps().empty());
}

TEST(RealClockTest, IsShared) { EXPECT_EQ(Clock::Real(), Clock::Real()); }

}  // namespace
}  // namespace workflows
