#ifndef WORKFLOWS_FAKE_SERVER_PROTO_DURATION_H_
#define WORKFLOWS_FAKE_SERVER_PROTO_DURATION_H_

// Checked conversion of the google.protobuf.Duration values users send the
// fake (scenario delays and stage durations, FakeControl's AdvanceClock and
// WaitForCalls timeouts). protobuf's own parsers accept any int64 seconds,
// so without this check `AdvanceClock(seconds: INT64_MAX)` moved the clock
// to absl's infinite future and the job progression looped there forever.
//
//   absl::StatusOr<absl::Duration> delay =
//       DurationFromProto(rule.behavior().delay(), "behavior.delay");
//   if (!delay.ok()) return delay.status();  // names the field and the range

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"

namespace workflows {
namespace fake {

// The range google.protobuf.Duration documents (about 10,000 years).
inline constexpr int64_t kMaxDurationSeconds = 315576000000;

// `duration` as an absl::Duration if it is a valid, non-negative
// google.protobuf.Duration: 0 <= seconds <= 315,576,000,000 and
// 0 <= nanos <= 999,999,999. Otherwise INVALID_ARGUMENT naming `field`,
// the value and the range, e.g.
//   AdvanceClockRequest.duration: seconds 9223372036854775807 out of range
//   0..315576000000 (google.protobuf.Duration's range)
// The result is always finite.
absl::StatusOr<absl::Duration> DurationFromProto(
    const google::protobuf::Duration& duration, absl::string_view field);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_PROTO_DURATION_H_
