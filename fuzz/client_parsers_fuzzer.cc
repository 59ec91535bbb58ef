// libFuzzer target: the client's parsing of server-sent metadata —
// `retry-after`, `grpc-retry-pushback-ms`, `x-wf-warnings` — and of the
// Status payloads that carry trailers and retry attempts.
//
// Input: the whole input is tried as one header value; it is also read as
// metadata, one `key:value` per line, which goes through FromGrpcStatus and
// must come back unchanged; and it is planted raw as each payload the
// client decodes, which must be rejected or decoded, never crash.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/errors.h"
#include "fuzz/fuzz_check.h"
#include "grpcpp/grpcpp.h"

namespace workflows {
namespace {

// A fixed "now" keeps runs reproducible: 2026-01-01T00:00:00Z.
const absl::Time kNow = absl::FromUnixSeconds(1767225600);

void FuzzHeaderValue(absl::string_view value) {
  if (std::optional<absl::Duration> wait = ParseRetryAfter(value, kNow)) {
    FUZZ_CHECK(*wait >= absl::ZeroDuration(), "negative retry-after ",
               absl::FormatDuration(*wait), " for \"", value, "\"");
  }
  // Any moment (including the infinite past and future) must be safe.
  ParseRetryAfter(value, absl::InfinitePast());
  ParseRetryAfter(value, absl::InfiniteFuture());
  if (std::optional<absl::Duration> pushback = ParsePushbackMs(value)) {
    FUZZ_CHECK(*pushback >= absl::ZeroDuration(), "negative pushback ",
               absl::FormatDuration(*pushback), " for \"", value, "\"");
  }
}

Metadata ToLines(absl::string_view data) {
  Metadata metadata;
  for (absl::string_view line : absl::StrSplit(data, '\n')) {
    std::pair<std::string, std::string> kv =
        absl::StrSplit(line, absl::MaxSplits(':', 1));
    metadata.push_back(std::move(kv));
  }
  return metadata;
}

void FuzzMetadata(absl::string_view data) {
  const Metadata metadata = ToLines(data);

  size_t expected_warnings = 0;
  for (const auto& [key, value] : metadata) {
    if (absl::EqualsIgnoreCase(key, kWarningsKey)) ++expected_warnings;
  }
  FUZZ_CHECK(ParseWarnings(metadata).size() == expected_warnings,
             "ParseWarnings missed or invented warnings");

  const absl::Status status = FromGrpcStatus(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "fuzz"), metadata);
  FUZZ_CHECK(TrailingMetadata(status) == metadata,
             "trailers do not survive FromGrpcStatus/TrailingMetadata");
  if (std::optional<absl::Duration> wait = RetryAfter(status, kNow)) {
    FUZZ_CHECK(*wait >= absl::ZeroDuration(), "negative RetryAfter");
  }
  if (std::optional<absl::Duration> pushback = RetryPushback(status)) {
    FUZZ_CHECK(*pushback >= absl::ZeroDuration(), "negative RetryPushback");
  }

  // A retried call keeps every attempt with its trailers.
  const absl::Status exhausted =
      RetryExhaustedError("GetJob", {status, absl::OkStatus(), status});
  FUZZ_CHECK(IsRetryExhausted(exhausted), "not marked retry-exhausted");
  const std::vector<absl::Status> attempts = RetryAttempts(exhausted);
  FUZZ_CHECK(attempts.size() == 3, "attempts lost: ", attempts.size());
  FUZZ_CHECK(TrailingMetadata(attempts[0]) == metadata,
             "attempt trailers lost");
  FUZZ_CHECK(TrailingMetadata(exhausted) == metadata, "last trailers lost");
}

void FuzzPayloads(absl::string_view data) {
  // Raw bytes where the client expects its own encodings.
  for (absl::string_view type_url :
       {"type.googleapis.com/workflows.TrailingMetadata",
        "type.googleapis.com/workflows.RetryAttempts",
        "type.googleapis.com/workflows.JobErrorCode"}) {
    absl::Status status = absl::UnavailableError("fuzz");
    status.SetPayload(type_url, absl::Cord(data));
    TrailingMetadata(status);
    RetryAfter(status, kNow);
    RetryPushback(status);
    RetryAttempts(status);
    JobErrorCode(status);
  }
  if (std::optional<std::vector<std::string>> fields = DecodeFields(data)) {
    std::optional<std::vector<std::string>> again =
        DecodeFields(EncodeFields(*fields));
    FUZZ_CHECK(again.has_value() && *again == *fields,
               "EncodeFields/DecodeFields do not round-trip");
  }
}

}  // namespace
}  // namespace workflows

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  workflows::FuzzHeaderValue(input);
  workflows::FuzzMetadata(input);
  workflows::FuzzPayloads(input);
  return 0;
}
