#include "client/errors.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace workflows {
namespace {

namespace wf = ::descarteslabs::workflows;

constexpr absl::string_view kTrailersPayload =
    "type.googleapis.com/workflows.TrailingMetadata";
constexpr absl::string_view kAttemptsPayload =
    "type.googleapis.com/workflows.RetryAttempts";
constexpr absl::string_view kJobErrorPayload =
    "type.googleapis.com/workflows.JobErrorCode";

std::string EncodeMetadata(const Metadata& metadata) {
  std::vector<std::string> fields;
  fields.reserve(metadata.size() * 2);
  for (const auto& [key, value] : metadata) {
    fields.push_back(key);
    fields.push_back(value);
  }
  return EncodeFields(fields);
}

std::optional<Metadata> DecodeMetadata(absl::string_view data) {
  std::optional<std::vector<std::string>> fields = DecodeFields(data);
  if (!fields.has_value() || fields->size() % 2 != 0) return std::nullopt;
  Metadata metadata;
  for (size_t i = 0; i < fields->size(); i += 2) {
    metadata.emplace_back(std::move((*fields)[i]), std::move((*fields)[i + 1]));
  }
  return metadata;
}

std::string EncodeStatus(const absl::Status& status) {
  return EncodeFields({absl::StrCat(static_cast<int>(status.code())),
                       std::string(status.message()),
                       EncodeMetadata(TrailingMetadata(status))});
}

std::optional<absl::Status> DecodeStatus(absl::string_view data) {
  std::optional<std::vector<std::string>> fields = DecodeFields(data);
  int code = 0;
  if (!fields.has_value() || fields->size() != 3 ||
      !absl::SimpleAtoi((*fields)[0], &code) || code < 0 || code > 16) {
    return std::nullopt;
  }
  std::optional<Metadata> trailers = DecodeMetadata((*fields)[2]);
  if (!trailers.has_value()) return std::nullopt;
  absl::Status status(static_cast<absl::StatusCode>(code), (*fields)[1]);
  SetTrailingMetadata(status, *trailers);
  return status;
}

}  // namespace

std::string EncodeFields(const std::vector<std::string>& fields) {
  std::string out;
  for (const std::string& field : fields) {
    absl::StrAppend(&out, field.size(), ":", field);
  }
  return out;
}

std::optional<std::vector<std::string>> DecodeFields(absl::string_view data) {
  std::vector<std::string> fields;
  while (!data.empty()) {
    size_t colon = data.find(':');
    if (colon == absl::string_view::npos || colon == 0 || colon > 19) {
      return std::nullopt;
    }
    uint64_t size = 0;
    absl::string_view digits = data.substr(0, colon);
    for (char c : digits) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
        return std::nullopt;
      }
    }
    if (!absl::SimpleAtoi(digits, &size)) return std::nullopt;
    data.remove_prefix(colon + 1);
    if (size > data.size()) return std::nullopt;
    fields.emplace_back(data.substr(0, size));
    data.remove_prefix(size);
  }
  return fields;
}

Metadata ToMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  Metadata out;
  out.reserve(metadata.size());
  for (const auto& [key, value] : metadata) {
    out.emplace_back(std::string(key.data(), key.size()),
                     std::string(value.data(), value.size()));
  }
  return out;
}

absl::Status FromGrpcStatus(const grpc::Status& status,
                            const Metadata& trailers) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  if (code < 0 || code > 16)
    code = static_cast<int>(absl::StatusCode::kUnknown);
  absl::Status out(static_cast<absl::StatusCode>(code), status.error_message());
  if (!trailers.empty()) SetTrailingMetadata(out, trailers);
  return out;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

void SetTrailingMetadata(absl::Status& status, const Metadata& trailers) {
  if (status.ok()) return;
  if (trailers.empty()) {
    status.ErasePayload(kTrailersPayload);
    return;
  }
  status.SetPayload(kTrailersPayload, absl::Cord(EncodeMetadata(trailers)));
}

Metadata TrailingMetadata(const absl::Status& status) {
  auto payload = status.GetPayload(kTrailersPayload);
  if (!payload.has_value()) return {};
  std::optional<Metadata> metadata = DecodeMetadata(std::string(*payload));
  return metadata.has_value() ? *std::move(metadata) : Metadata();
}

std::optional<std::string> GetTrailingMetadata(const absl::Status& status,
                                               absl::string_view key) {
  for (auto& [k, v] : TrailingMetadata(status)) {
    if (absl::EqualsIgnoreCase(k, key)) return v;
  }
  return std::nullopt;
}

std::optional<absl::Duration> ParseRetryAfter(absl::string_view value,
                                              absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  bool all_digits = true;
  for (char c : value) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      all_digits = false;
      break;
    }
  }
  if (all_digits) {
    int64_t seconds = 0;
    if (!absl::SimpleAtoi(value, &seconds)) return std::nullopt;
    return absl::Seconds(seconds);
  }
  // The three HTTP-date forms of RFC 7231 section 7.1.1.1.
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // Sun, 06 Nov 1994 08:49:37 GMT
      "%A, %d-%b-%y %H:%M:%S GMT",  // Sunday, 06-Nov-94 08:49:37 GMT
      "%a %b %e %H:%M:%S %Y",       // Sun Nov  6 08:49:37 1994
  };
  std::string text(value);
  for (const char* format : kFormats) {
    absl::Time when;
    std::string error;
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &when, &error)) {
      return std::max(absl::ZeroDuration(), when - now);
    }
  }
  return std::nullopt;
}

std::optional<absl::Duration> RetryAfter(const absl::Status& status,
                                         absl::Time now) {
  std::optional<std::string> value =
      GetTrailingMetadata(status, kRetryAfterKey);
  if (!value.has_value()) return std::nullopt;
  return ParseRetryAfter(*value, now);
}

std::optional<absl::Duration> ParsePushbackMs(absl::string_view value) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  for (char c : value) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
  }
  int64_t ms = 0;
  if (!absl::SimpleAtoi(value, &ms)) return std::nullopt;
  return absl::Milliseconds(ms);
}

std::optional<absl::Duration> RetryPushback(const absl::Status& status) {
  std::optional<std::string> value = GetTrailingMetadata(status, kPushbackKey);
  if (!value.has_value()) return std::nullopt;
  return ParsePushbackMs(*value);
}

std::vector<std::string> ParseWarnings(const Metadata& initial_metadata) {
  std::vector<std::string> warnings;
  for (const auto& [key, value] : initial_metadata) {
    if (absl::EqualsIgnoreCase(key, kWarningsKey)) warnings.push_back(value);
  }
  return warnings;
}

absl::Status RetryExhaustedError(absl::string_view method,
                                 const std::vector<absl::Status>& attempts) {
  absl::Status last = attempts.empty()
                          ? absl::UnknownError("no attempt was made")
                          : attempts.back();
  absl::StatusCode code = last.ok() ? absl::StatusCode::kUnknown : last.code();
  absl::Status out(
      code,
      absl::StrFormat("Maximum retry attempts calling %s (%d attempts); "
                      "last error: %s: %s",
                      method, attempts.size(),
                      absl::StatusCodeToString(last.code()), last.message()));
  SetTrailingMetadata(out, TrailingMetadata(last));
  std::vector<std::string> encoded;
  encoded.reserve(attempts.size());
  for (const absl::Status& attempt : attempts) {
    encoded.push_back(EncodeStatus(attempt));
  }
  out.SetPayload(kAttemptsPayload, absl::Cord(EncodeFields(encoded)));
  return out;
}

bool IsRetryExhausted(const absl::Status& status) {
  return status.GetPayload(kAttemptsPayload).has_value();
}

std::vector<absl::Status> RetryAttempts(const absl::Status& status) {
  auto payload = status.GetPayload(kAttemptsPayload);
  if (!payload.has_value()) return {};
  std::optional<std::vector<std::string>> records =
      DecodeFields(std::string(*payload));
  if (!records.has_value()) return {};
  std::vector<absl::Status> attempts;
  for (const std::string& record : *records) {
    std::optional<absl::Status> attempt = DecodeStatus(record);
    if (!attempt.has_value()) return {};
    attempts.push_back(*std::move(attempt));
  }
  return attempts;
}

absl::StatusCode JobErrorStatusCode(wf::ErrorCode code) {
  switch (code) {
    case wf::ERROR_INVALID:
    case wf::ERROR_TYPING:
      return absl::StatusCode::kInvalidArgument;
    case wf::ERROR_DEADLINE:
      return absl::StatusCode::kDeadlineExceeded;
    case wf::ERROR_OOM:
      return absl::StatusCode::kResourceExhausted;
    case wf::ERROR_INTERRUPT:
    case wf::ERROR_TERMINATED:
      return absl::StatusCode::kAborted;
    case wf::ERROR_AUTH:
      return absl::StatusCode::kPermissionDenied;
    case wf::ERROR_SERIALIZATION:
      return absl::StatusCode::kInternal;
    case wf::ERROR_DESTINATION:
      return absl::StatusCode::kFailedPrecondition;
    default:  // ERROR_UNKNOWN, ERROR_TRANSIENT and codes added later.
      return absl::StatusCode::kUnknown;
  }
}

absl::Status JobError(absl::string_view job_id, const wf::Job::Error& error) {
  std::string name = wf::ErrorCode_IsValid(error.code())
                         ? wf::ErrorCode_Name(error.code())
                         : absl::StrCat(static_cast<int>(error.code()));
  absl::Status status(
      JobErrorStatusCode(error.code()),
      absl::StrFormat("Job(\"%s\") failed with: code=%s, message=\"%s\"",
                      job_id, name, error.message()));
  status.SetPayload(kJobErrorPayload,
                    absl::Cord(absl::StrCat(static_cast<int>(error.code()))));
  return status;
}

std::optional<wf::ErrorCode> JobErrorCode(const absl::Status& status) {
  auto payload = status.GetPayload(kJobErrorPayload);
  int code = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &code)) {
    return std::nullopt;
  }
  return static_cast<wf::ErrorCode>(code);
}

absl::Status JobCancelledError(absl::string_view job_id) {
  return absl::CancelledError(
      absl::StrFormat("Job(\"%s\") was cancelled", job_id));
}

absl::Status JobTimeoutError(absl::string_view job_id, absl::Duration timeout) {
  return absl::DeadlineExceededError(
      absl::StrFormat("Job(\"%s\") did not finish within %s", job_id,
                      absl::FormatDuration(timeout)));
}

}  // namespace workflows
