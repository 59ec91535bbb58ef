#ifndef WORKFLOWS_CLIENT_ERRORS_H_
#define WORKFLOWS_CLIENT_ERRORS_H_

// Errors of the Workflows client are plain absl::Status values. The gRPC code
// maps 1:1 onto absl::StatusCode and the message is kept; what gRPC returns
// beside them (trailing metadata, every attempt of a retried call, the
// ErrorCode of a failed job) travels as Status payloads and is read back with
// the helpers below.
//
//   CallResult<Job> job = client.GetJob(request);
//   if (std::optional<absl::Duration> wait =
//           RetryAfter(job.status(), absl::Now())) { ... }
//   if (IsRetryExhausted(job.status())) {
//     for (const absl::Status& attempt : RetryAttempts(job.status())) ...
//   }

#include <grpcpp/grpcpp.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/job.pb.h"

namespace workflows {

// gRPC metadata as an ordered list of (key, value); keys may repeat.
using Metadata = std::vector<std::pair<std::string, std::string>>;

// Metadata keys the client reads and writes.
inline constexpr absl::string_view kRetryAfterKey = "retry-after";
inline constexpr absl::string_view kPushbackKey = "grpc-retry-pushback-ms";
inline constexpr absl::string_view kWarningsKey = "x-wf-warnings";

// Converts gRPC's metadata multimap (as returned by
// ClientContext::GetServer{Initial,Trailing}Metadata) into Metadata.
Metadata ToMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// The absl::Status for a finished gRPC call: same code and message, with
// `trailers` attached as a payload. OK stays OK (without payload).
absl::Status FromGrpcStatus(const grpc::Status& status,
                            const Metadata& trailers = {});

// The reverse mapping, for servers (the trailers are not carried).
grpc::Status ToGrpcStatus(const absl::Status& status);

// Attaches `trailers` to `status` (replacing any earlier ones).
void SetTrailingMetadata(absl::Status& status, const Metadata& trailers);

// All trailing metadata attached to `status`, in order (empty if none).
Metadata TrailingMetadata(const absl::Status& status);

// The first trailing-metadata value for `key` (lower-case), if any.
std::optional<std::string> GetTrailingMetadata(const absl::Status& status,
                                               absl::string_view key);

// Parses a `retry-after` value like urllib3: a non-negative integer number of
// seconds, or an HTTP date (RFC 7231 IMF-fixdate, RFC 850 or asctime) turned
// into the time from `now` (never negative). Anything else is nullopt.
std::optional<absl::Duration> ParseRetryAfter(absl::string_view value,
                                              absl::Time now);

// `retry-after` of `status`, parsed relative to `now`.
std::optional<absl::Duration> RetryAfter(const absl::Status& status,
                                         absl::Time now);

// Parses `grpc-retry-pushback-ms`: a non-negative integer of milliseconds.
std::optional<absl::Duration> ParsePushbackMs(absl::string_view value);

// `grpc-retry-pushback-ms` of `status`.
std::optional<absl::Duration> RetryPushback(const absl::Status& status);

// Every `x-wf-warnings` value of `initial_metadata`, in order. Other keys are
// ignored; no header means no warnings.
std::vector<std::string> ParseWarnings(const Metadata& initial_metadata);

// The error returned when a call's retries run out. It keeps the code and the
// trailers of the last attempt (so RetryAfter etc. still work) and carries
// every attempt's status, in order.
absl::Status RetryExhaustedError(absl::string_view method,
                                 const std::vector<absl::Status>& attempts);

// True for statuses that carry a retried call's attempts: those made by
// RetryExhaustedError, and the errors that ended a call after failed
// attempts (its overall deadline passed, or its token could not be had).
bool IsRetryExhausted(const absl::Status& status);

// Every attempt of such a call, in order, each with its trailers. Empty for
// other statuses.
std::vector<absl::Status> RetryAttempts(const absl::Status& status);

// The status of a job that FAILED, in the Python client's wording:
// `Job("<id>") failed with: code=<NAME>, message="<msg>"`. The absl code
// depends on the ErrorCode (e.g. ERROR_INVALID -> INVALID_ARGUMENT,
// ERROR_OOM -> RESOURCE_EXHAUSTED); JobErrorCode gives the ErrorCode back.
absl::Status JobError(absl::string_view job_id,
                      const descarteslabs::workflows::Job::Error& error);

// The ErrorCode of a status made by JobError.
std::optional<descarteslabs::workflows::ErrorCode> JobErrorCode(
    const absl::Status& status);

// The status code JobError uses for `code`.
absl::StatusCode JobErrorStatusCode(descarteslabs::workflows::ErrorCode code);

// The status of a job that was CANCELLED (code CANCELLED).
absl::Status JobCancelledError(absl::string_view job_id);

// The status of a job that did not finish in time (code DEADLINE_EXCEEDED).
absl::Status JobTimeoutError(absl::string_view job_id, absl::Duration timeout);

// Length-prefixed encoding used for the payloads ("<size>:<bytes>" per
// field). Exposed for tests and fuzzers; Decode rejects malformed input.
std::string EncodeFields(const std::vector<std::string>& fields);
std::optional<std::vector<std::string>> DecodeFields(absl::string_view data);

}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_ERRORS_H_
