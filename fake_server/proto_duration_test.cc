#include "fake_server/proto_duration.h"

#include <cstdint>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace fake {
namespace {

using ::testing::HasSubstr;

google::protobuf::Duration Proto(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Duration duration;
  duration.set_seconds(seconds);
  duration.set_nanos(nanos);
  return duration;
}

TEST(DurationFromProtoTest, ConvertsTheWholeValidRange) {
  EXPECT_EQ(*DurationFromProto(Proto(0), "d"), absl::ZeroDuration());
  EXPECT_EQ(*DurationFromProto(Proto(2, 500), "d"),
            absl::Seconds(2) + absl::Nanoseconds(500));
  absl::StatusOr<absl::Duration> longest =
      DurationFromProto(Proto(kMaxDurationSeconds, 999999999), "d");
  ASSERT_TRUE(longest.ok()) << longest.status();
  EXPECT_EQ(*longest,
            absl::Seconds(kMaxDurationSeconds) + absl::Nanoseconds(999999999));
}

TEST(DurationFromProtoTest, SecondsPastTheRangeAreRefusedNamingIt) {
  absl::StatusOr<absl::Duration> huge =
      DurationFromProto(Proto(std::numeric_limits<int64_t>::max()), "x.delay");
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(huge.status().message(),
              HasSubstr("x.delay: seconds 9223372036854775807 out of range "
                        "0..315576000000 (google.protobuf.Duration's range)"));
  EXPECT_FALSE(DurationFromProto(Proto(kMaxDurationSeconds + 1), "d").ok());
}

TEST(DurationFromProtoTest, NegativeAndMalformedNanosAreRefused) {
  EXPECT_THAT(DurationFromProto(Proto(-1), "d").status().message(),
              HasSubstr("d: negative duration (seconds: -1, nanos: 0)"));
  EXPECT_THAT(DurationFromProto(Proto(0, -1), "d").status().message(),
              HasSubstr("negative duration"));
  EXPECT_THAT(DurationFromProto(Proto(0, 1000000000), "d").status().message(),
              HasSubstr("d: nanos 1000000000 out of range 0..999999999"));
}

}  // namespace
}  // namespace fake
}  // namespace workflows
