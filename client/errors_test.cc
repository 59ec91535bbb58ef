#include "client/errors.h"

#include <random>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace {

namespace wf = ::descarteslabs::workflows;
using ::testing::ElementsAre;
using ::testing::Optional;
using ::testing::Pair;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01

TEST(ParseRetryAfterTest, Seconds) {
  EXPECT_THAT(ParseRetryAfter("120", kNow), Optional(absl::Seconds(120)));
  EXPECT_THAT(ParseRetryAfter(" 0 ", kNow), Optional(absl::ZeroDuration()));
}

TEST(ParseRetryAfterTest, HttpDatesInAllThreeForms) {
  // One hour after kNow.
  EXPECT_THAT(ParseRetryAfter("Thu, 01 Jan 2026 01:00:00 GMT", kNow),
              Optional(absl::Hours(1)));
  EXPECT_THAT(ParseRetryAfter("Thursday, 01-Jan-26 01:00:00 GMT", kNow),
              Optional(absl::Hours(1)));
  EXPECT_THAT(ParseRetryAfter("Thu Jan  1 01:00:00 2026", kNow),
              Optional(absl::Hours(1)));
}

TEST(ParseRetryAfterTest, PastDateIsZero) {
  EXPECT_THAT(ParseRetryAfter("Wed, 31 Dec 2025 23:00:00 GMT", kNow),
              Optional(absl::ZeroDuration()));
}

TEST(ParseRetryAfterTest, RejectsGarbage) {
  for (absl::string_view bad :
       {"", "  ", "-5", "1.5", "soon", "12abc", "99999999999999999999999",
        "Thu, 01 Jan 2026 01:00:00", "Thu, 32 Jan 2026 01:00:00 GMT"}) {
    EXPECT_EQ(ParseRetryAfter(bad, kNow), std::nullopt) << bad;
  }
}

TEST(ParsePushbackMsTest, ParsesMillisecondsOnly) {
  EXPECT_THAT(ParsePushbackMs("2500"), Optional(absl::Milliseconds(2500)));
  EXPECT_EQ(ParsePushbackMs("-1"), std::nullopt);
  EXPECT_EQ(ParsePushbackMs("1e3"), std::nullopt);
  EXPECT_EQ(ParsePushbackMs(""), std::nullopt);
}

TEST(ParseWarningsTest, KeepsOrderAndIgnoresOtherKeys) {
  EXPECT_THAT(ParseWarnings({{"x-wf-warnings", "first"},
                             {"other", "x"},
                             {"x-wf-warnings", "second"}}),
              ElementsAre("first", "second"));
  EXPECT_TRUE(ParseWarnings({}).empty());
}

TEST(FromGrpcStatusTest, KeepsCodeMessageAndTrailers) {
  for (int code = 1; code <= 16; ++code) {
    absl::Status status = FromGrpcStatus(
        grpc::Status(static_cast<grpc::StatusCode>(code), "boom"));
    EXPECT_EQ(static_cast<int>(status.code()), code);
    EXPECT_EQ(status.message(), "boom");
  }
  absl::Status status =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no"),
                     {{"retry-after", "120"}, {"other", "v"}});
  EXPECT_THAT(GetTrailingMetadata(status, "retry-after"),
              Optional(std::string("120")));
  EXPECT_THAT(RetryAfter(status, kNow), Optional(absl::Seconds(120)));
  EXPECT_THAT(TrailingMetadata(status),
              ElementsAre(Pair("retry-after", "120"), Pair("other", "v")));
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, {{"k", "v"}}).ok());
  EXPECT_EQ(ToGrpcStatus(status).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST(RetryExhaustedTest, CarriesEveryAttempt) {
  absl::Status first = absl::UnavailableError("down");
  absl::Status second = absl::ResourceExhaustedError("slow down");
  SetTrailingMetadata(second, {{"grpc-retry-pushback-ms", "10"}});
  absl::Status status = RetryExhaustedError("CreateJob", {first, second});
  EXPECT_TRUE(IsRetryExhausted(status));
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()),
              ::testing::HasSubstr("Maximum retry attempts calling CreateJob"));
  EXPECT_THAT(RetryPushback(status), Optional(absl::Milliseconds(10)));
  std::vector<absl::Status> attempts = RetryAttempts(status);
  ASSERT_EQ(attempts.size(), 2);
  EXPECT_EQ(attempts[0], first);
  EXPECT_EQ(attempts[1].code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(RetryPushback(attempts[1]), Optional(absl::Milliseconds(10)));
  EXPECT_FALSE(IsRetryExhausted(first));
  EXPECT_TRUE(RetryAttempts(first).empty());
}

TEST(JobErrorTest, PythonMessageAndCode) {
  wf::Job::Error error;
  error.set_code(wf::ERROR_OOM);
  error.set_message("out of memory");
  absl::Status status = JobError("abc123", error);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(),
            "Job(\"abc123\") failed with: code=ERROR_OOM, "
            "message=\"out of memory\"");
  EXPECT_THAT(JobErrorCode(status), Optional(wf::ERROR_OOM));
  EXPECT_EQ(JobErrorCode(absl::UnknownError("x")), std::nullopt);
  EXPECT_EQ(JobErrorStatusCode(wf::ERROR_INVALID),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(JobErrorStatusCode(wf::ERROR_TRANSIENT),
            absl::StatusCode::kUnknown);
  EXPECT_EQ(JobCancelledError("j").code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(JobTimeoutError("j", absl::Seconds(3)).code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(RetryExhaustedTest, ToStringIsReadableAndCompact) {
  absl::Status attempt = absl::UnavailableError("backend restarting");
  SetTrailingMetadata(attempt, {{"retry-after", "1"}});
  absl::Status status = RetryExhaustedError(
      "GetJob",
      {attempt, attempt, attempt, absl::DeadlineExceededError("slow")});

  EXPECT_EQ(status.ToString(),
            "DEADLINE_EXCEEDED: Maximum retry attempts calling GetJob (4 "
            "attempts); last error: DEADLINE_EXCEEDED: slow "
            "[type.googleapis.com/workflows.RetryAttempts='3x UNAVAILABLE: "
            "backend restarting {retry-after=1}; DEADLINE_EXCEEDED: slow']");
  std::vector<absl::Status> attempts = RetryAttempts(status);
  ASSERT_EQ(attempts.size(), 4);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(attempts[i], attempt) << i;
  EXPECT_EQ(attempts[3], absl::DeadlineExceededError("slow"));

  absl::Status with_trailers = absl::UnavailableError("down");
  SetTrailingMetadata(with_trailers,
                      {{"retry-after", "1"}, {"grpc-retry-pushback-ms", "5"}});
  EXPECT_EQ(with_trailers.ToString(),
            "UNAVAILABLE: down [type.googleapis.com/workflows.TrailingMetadata="
            "'retry-after=1, grpc-retry-pushback-ms=5']");
}

TEST(RetryExhaustedTest, EveryByteSurvivesTheReadableEncoding) {
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  const std::vector<std::string> tricky = {
      "",    all_bytes, "a; b", "x {k=v}", "%41", "2x UNAVAILABLE: y",
      "=,=", " {",      "}",    ": "};
  std::vector<absl::Status> attempts;
  for (const std::string& text : tricky) {
    absl::Status attempt(absl::StatusCode::kUnavailable, text);
    SetTrailingMetadata(attempt, {{text, text}, {"k", text}, {text, ""}});
    attempts.push_back(attempt);
    attempts.push_back(attempt);  // repeated: written once with a count
  }
  attempts.push_back(absl::OkStatus());
  absl::Status status = RetryExhaustedError("GetJob", attempts);
  std::vector<absl::Status> decoded = RetryAttempts(status);
  ASSERT_EQ(decoded.size(), attempts.size());
  for (size_t i = 0; i < attempts.size(); ++i) {
    EXPECT_EQ(decoded[i].code(), attempts[i].code()) << i;
    EXPECT_EQ(decoded[i].message(), attempts[i].message()) << i;
    EXPECT_EQ(TrailingMetadata(decoded[i]), TrailingMetadata(attempts[i])) << i;
  }
}

TEST(RetryExhaustedTest, MalformedOrOversizedAttemptsDecodeToNothing) {
  for (absl::string_view bad :
       {"UNAVAILABLE", "NOPE: x", "1x UNAVAILABLE: x", "2xUNAVAILABLE: x",
        "UNAVAILABLE: a;b", "UNAVAILABLE: x {k}", "UNAVAILABLE: x {k=v",
        "UNAVAILABLE: %4", "UNAVAILABLE: %zz",
        "9999x OK: ; 9999x OK: ", "999999x OK: "}) {
    absl::Status status = absl::UnknownError("x");
    status.SetPayload("type.googleapis.com/workflows.RetryAttempts",
                      absl::Cord(bad));
    EXPECT_THAT(RetryAttempts(status), ::testing::IsEmpty()) << bad;
  }
  absl::Status status = absl::UnknownError("x");
  status.SetPayload("type.googleapis.com/workflows.RetryAttempts",
                    absl::Cord("2x UNAVAILABLE: a %3B b; OK: "));
  EXPECT_THAT(RetryAttempts(status),
              ElementsAre(absl::UnavailableError("a ; b"),
                          absl::UnavailableError("a ; b"), absl::OkStatus()));
}

TEST(FieldsTest, RoundTripAndRejectMalformed) {
  std::vector<std::string> fields = {"", "a:b", std::string("\0x", 2)};
  EXPECT_THAT(DecodeFields(EncodeFields(fields)), Optional(fields));
  for (absl::string_view bad : {"5:abc", ":", "x:1", "1", "-1:a"}) {
    EXPECT_EQ(DecodeFields(bad), std::nullopt) << bad;
  }
}

// A fixed-seed smoke run of what the fuzzer will do: arbitrary bytes never
// crash the parsers, and whatever parses is non-negative.
TEST(ParsersTest, ArbitraryInputNeverCrashes) {
  std::mt19937 engine(20261124);
  std::uniform_int_distribution<int> byte(0, 255), length(0, 40);
  for (int i = 0; i < 5000; ++i) {
    std::string input(length(engine), '\0');
    for (char& c : input) c = static_cast<char>(byte(engine));
    if (i % 2 == 0 && !input.empty()) input[0] = '1' + i % 9;
    if (auto d = ParseRetryAfter(input, kNow)) {
      EXPECT_GE(*d, absl::ZeroDuration());
    }
    if (auto d = ParsePushbackMs(input)) {
      EXPECT_GE(*d, absl::ZeroDuration());
    }
    (void)DecodeFields(input);
    absl::Status status = absl::UnknownError("x");
    status.SetPayload("type.googleapis.com/workflows.RetryAttempts",
                      absl::Cord(input));
    status.SetPayload("type.googleapis.com/workflows.TrailingMetadata",
                      absl::Cord(input));
    RetryAttempts(status);
    TrailingMetadata(status);
    ParseWarnings({{"x-wf-warnings", input}, {input, "v"}});
  }
}

}  // namespace
}  // namespace workflows
