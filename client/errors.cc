#include "client/errors.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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

// The payloads are text that reads well where absl::Status::ToString() shows
// them ("UNAVAILABLE: ... [type.googleapis.com/workflows.RetryAttempts='2x
// UNAVAILABLE: backend restarting {retry-after=1}']") and decodes exactly:
//   metadata:  key=value, key=value
//   attempts:  [<n>x ]CODE: message[ {metadata}]; ...
// where <n>x stands for n identical attempts in a row. Bytes that would be
// ambiguous ('%' and the separators) and control characters are written as
// %XX.
constexpr absl::string_view kMetadataSpecials = "%,;={}";
constexpr absl::string_view kMessageSpecials = "%;{}";
// Bounds what a payload may expand to (an "<n>x" prefix is cheap to write).
constexpr int64_t kMaxDecodedAttempts = 10000;

std::string Escape(absl::string_view text, absl::string_view specials) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const unsigned char byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f ||
        specials.find(c) != absl::string_view::npos) {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", byte));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<std::string> Unescape(absl::string_view text,
                                    absl::string_view specials) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c != '%') {
      if (specials.find(c) != absl::string_view::npos) return std::nullopt;
      out.push_back(c);
      continue;
    }
    if (i + 2 >= text.size()) {
      return std::nullopt;
    }
    int value = 0;
    for (size_t j = i + 1; j <= i + 2; ++j) {
      const char h = text[j];
      int digit = 0;
      if (h >= '0' && h <= '9') {
        digit = h - '0';
      } else if (h >= 'A' && h <= 'F') {
        digit = h - 'A' + 10;
      } else {
        return std::nullopt;
      }
      value = value * 16 + digit;
    }
    out.push_back(static_cast<char>(value));
    i += 2;
  }
  return out;
}

std::string EncodeMetadata(const Metadata& metadata) {
  std::vector<std::string> pairs;
  pairs.reserve(metadata.size());
  for (const auto& [key, value] : metadata) {
    pairs.push_back(absl::StrCat(Escape(key, kMetadataSpecials), "=",
                                 Escape(value, kMetadataSpecials)));
  }
  return absl::StrJoin(pairs, ", ");
}

std::optional<Metadata> DecodeMetadata(absl::string_view data) {
  Metadata metadata;
  if (data.empty()) return metadata;
  std::vector<absl::string_view> pairs = absl::StrSplit(data, ',');
  for (size_t i = 0; i < pairs.size(); ++i) {
    absl::string_view pair = pairs[i];
    if (i > 0 && !absl::ConsumePrefix(&pair, " ")) return std::nullopt;
    const size_t equals = pair.find('=');
    if (equals == absl::string_view::npos) return std::nullopt;
    std::optional<std::string> key =
        Unescape(pair.substr(0, equals), kMetadataSpecials);
    std::optional<std::string> value =
        Unescape(pair.substr(equals + 1), kMetadataSpecials);
    if (!key.has_value() || !value.has_value()) return std::nullopt;
    metadata.emplace_back(*std::move(key), *std::move(value));
  }
  return metadata;
}

// "CODE: message[ {metadata}]", without the repeat count.
std::string EncodeStatus(const absl::Status& status) {
  std::string out = absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                                 Escape(status.message(), kMessageSpecials));
  const Metadata trailers = TrailingMetadata(status);
  if (!trailers.empty()) {
    absl::StrAppend(&out, " {", EncodeMetadata(trailers), "}");
  }
  return out;
}

std::optional<absl::Status> DecodeStatus(absl::string_view data) {
  const size_t colon = data.find(": ");
  if (colon == absl::string_view::npos) return std::nullopt;
  const absl::string_view name = data.substr(0, colon);
  std::optional<absl::StatusCode> code;
  for (int number = 0; number <= 16; ++number) {
    const auto candidate = static_cast<absl::StatusCode>(number);
    if (absl::StatusCodeToString(candidate) == name) code = candidate;
  }
  if (!code.has_value()) return std::nullopt;
  absl::string_view rest = data.substr(colon + 2);
  Metadata trailers;
  const size_t brace = rest.find(" {");
  if (brace != absl::string_view::npos) {
    absl::string_view encoded = rest.substr(brace + 2);
    if (!absl::ConsumeSuffix(&encoded, "}")) return std::nullopt;
    std::optional<Metadata> decoded = DecodeMetadata(encoded);
    if (!decoded.has_value()) return std::nullopt;
    trailers = *std::move(decoded);
    rest = rest.substr(0, brace);
  }
  std::optional<std::string> message = Unescape(rest, kMessageSpecials);
  if (!message.has_value()) return std::nullopt;
  absl::Status status(*code, *message);
  SetTrailingMetadata(status, trailers);
  return status;
}

std::string EncodeAttempts(const std::vector<absl::Status>& attempts) {
  std::vector<std::string> runs;
  std::string previous;
  int64_t count = 0;
  auto flush = [&] {
    if (count == 0) return;
    runs.push_back(count == 1 ? previous : absl::StrCat(count, "x ", previous));
  };
  for (const absl::Status& attempt : attempts) {
    std::string encoded = EncodeStatus(attempt);
    if (count > 0 && encoded == previous) {
      ++count;
      continue;
    }
    flush();
    previous = std::move(encoded);
    count = 1;
  }
  flush();
  return absl::StrJoin(runs, "; ");
}

std::optional<std::vector<absl::Status>> DecodeAttempts(
    absl::string_view data) {
  std::vector<absl::Status> attempts;
  if (data.empty()) return attempts;
  std::vector<absl::string_view> runs = absl::StrSplit(data, ';');
  for (size_t i = 0; i < runs.size(); ++i) {
    absl::string_view run = runs[i];
    if (i > 0 && !absl::ConsumePrefix(&run, " ")) return std::nullopt;
    int64_t count = 1;
    if (!run.empty() &&
        absl::ascii_isdigit(static_cast<unsigned char>(run[0]))) {
      const size_t x = run.find("x ");
      if (x == absl::string_view::npos || x > 6 ||
          !absl::SimpleAtoi(run.substr(0, x), &count) || count < 2) {
        return std::nullopt;
      }
      run.remove_prefix(x + 2);
    }
    if (static_cast<int64_t>(attempts.size()) + count > kMaxDecodedAttempts) {
      return std::nullopt;
    }
    std::optional<absl::Status> status = DecodeStatus(run);
    if (!status.has_value()) return std::nullopt;
    attempts.insert(attempts.end(), count, *status);
  }
  return attempts;
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
  out.SetPayload(kAttemptsPayload, absl::Cord(EncodeAttempts(attempts)));
  return out;
}

bool IsRetryExhausted(const absl::Status& status) {
  return status.GetPayload(kAttemptsPayload).has_value();
}

std::vector<absl::Status> RetryAttempts(const absl::Status& status) {
  auto payload = status.GetPayload(kAttemptsPayload);
  if (!payload.has_value()) return {};
  std::optional<std::vector<absl::Status>> attempts =
      DecodeAttempts(std::string(*payload));
  if (!attempts.has_value()) return {};
  return *std::move(attempts);
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
