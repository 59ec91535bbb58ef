#include "fake_server/proto_duration.h"

#include "absl/strings/str_cat.h"

namespace workflows {
namespace fake {

absl::StatusOr<absl::Duration> DurationFromProto(
    const google::protobuf::Duration& duration, absl::string_view field) {
  if (duration.seconds() < 0 || duration.nanos() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": negative duration (seconds: ", duration.seconds(),
        ", nanos: ", duration.nanos(), ")"));
  }
  if (duration.seconds() > kMaxDurationSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": seconds ", duration.seconds(), " out of range 0..",
        kMaxDurationSeconds, " (google.protobuf.Duration's range)"));
  }
  if (duration.nanos() > 999999999) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": nanos ", duration.nanos(), " out of range 0..999999999"));
  }
  return absl::Seconds(duration.seconds()) +
         absl::Nanoseconds(duration.nanos());
}

}  // namespace fake
}  // namespace workflows
