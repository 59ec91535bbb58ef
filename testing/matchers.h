#ifndef WORKFLOWS_TESTING_MATCHERS_H_
#define WORKFLOWS_TESTING_MATCHERS_H_

// gMock matchers for statuses, protos, metadata and deadlines.
//
//   EXPECT_THAT(client.GetJob(request), StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(client.GetJob(request), IsOkAndHolds(Partially(EqualsProto(
//                                           "state { stage: QUEUED }"))));
//   EXPECT_CALL(backend, GetJob(HasBearerToken("t0ken"), _, _));
//   EXPECT_THAT(server.journal().Calls("WatchJob")[0],
//               DeadlineNear(absl::Hours(24), absl::Seconds(5)));
//
// Status matchers accept absl::Status, absl::StatusOr<T>, grpc::Status and
// anything with a status() method (e.g. workflows::CallResult<T>).

#include <grpcpp/support/status.h>

#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/call_context.h"
#include "fake_server/journal.h"
#include "fake_server/journal.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"

namespace workflows {
namespace testing {
namespace matchers_internal {

inline absl::Status ToStatus(const absl::Status& status) { return status; }
inline absl::Status ToStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}
template <typename T>
auto ToStatus(const T& value) -> decltype(value.status(), absl::Status()) {
  return value.status();
}

// A code matcher from a code (absl or grpc) or from a matcher of codes.
inline ::testing::Matcher<absl::StatusCode> ToCodeMatcher(
    absl::StatusCode code) {
  return ::testing::Eq(code);
}
inline ::testing::Matcher<absl::StatusCode> ToCodeMatcher(
    grpc::StatusCode code) {
  return ::testing::Eq(static_cast<absl::StatusCode>(code));
}
template <typename M>
::testing::Matcher<absl::StatusCode> ToCodeMatcher(M matcher) {
  return ::testing::SafeMatcherCast<absl::StatusCode>(matcher);
}

// Says what the status is, unless gtest prints the value as that status
// already (an absl::Status): others (grpc::Status, CallResult) print as bytes.
template <typename T>
void ExplainStatus(const T&, const absl::Status& status,
                   ::testing::MatchResultListener* listener) {
  if (std::is_same<T, absl::Status>::value) {
    *listener << "whose code is " << absl::StatusCodeToString(status.code());
  } else {
    *listener << "whose status is " << status;
  }
}

class StatusIsMatcher {
 public:
  StatusIsMatcher(::testing::Matcher<absl::StatusCode> code,
                  ::testing::Matcher<const std::string&> message)
      : code_(std::move(code)), message_(std::move(message)) {}

  template <typename T>
  bool MatchAndExplain(const T& value,
                       ::testing::MatchResultListener* listener) const {
    const absl::Status status = ToStatus(value);
    ExplainStatus(value, status, listener);
    if (!code_.Matches(status.code())) return false;
    ::testing::StringMatchResultListener inner;
    const bool ok =
        message_.MatchAndExplain(std::string(status.message()), &inner);
    if (!ok && !inner.str().empty()) *listener << ", " << inner.str();
    return ok;
  }
  void DescribeTo(std::ostream* os) const {
    *os << "has a status code that ";
    code_.DescribeTo(os);
    *os << " and a message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "has a status code that ";
    code_.DescribeNegationTo(os);
    *os << " or a message that ";
    message_.DescribeNegationTo(os);
  }

 private:
  ::testing::Matcher<absl::StatusCode> code_;
  ::testing::Matcher<const std::string&> message_;
};

class IsOkMatcher {
 public:
  template <typename T>
  bool MatchAndExplain(const T& value,
                       ::testing::MatchResultListener* listener) const {
    const absl::Status status = ToStatus(value);
    if (!status.ok()) ExplainStatus(value, status, listener);
    return status.ok();
  }
  void DescribeTo(std::ostream* os) const { *os << "is OK"; }
  void DescribeNegationTo(std::ostream* os) const { *os << "is not OK"; }
};

template <typename InnerMatcher>
class IsOkAndHoldsGenerator {
 public:
  explicit IsOkAndHoldsGenerator(InnerMatcher inner)
      : inner_(std::move(inner)) {}

  template <typename T>
  operator ::testing::Matcher<T>() const {  // NOLINT: implicit by design.
    return ::testing::Matcher<T>(new Impl<const T&>(inner_));
  }

 private:
  template <typename T>
  class Impl : public ::testing::MatcherInterface<T> {
   public:
    using Value = std::decay_t<decltype(*std::declval<T>())>;

    explicit Impl(const InnerMatcher& inner)
        : inner_(::testing::SafeMatcherCast<const Value&>(inner)) {}

    bool MatchAndExplain(
        T value, ::testing::MatchResultListener* listener) const override {
      const absl::Status status = ToStatus(value);
      if (!status.ok()) {
        *listener << "whose status is " << status;
        return false;
      }
      *listener << "whose value " << ::testing::PrintToString(*value) << " ";
      return inner_.MatchAndExplain(*value, listener);
    }
    void DescribeTo(std::ostream* os) const override {
      *os << "is OK and holds a value that ";
      inner_.DescribeTo(os);
    }
    void DescribeNegationTo(std::ostream* os) const override {
      *os << "is not OK or holds a value that ";
      inner_.DescribeNegationTo(os);
    }

   private:
    ::testing::Matcher<const Value&> inner_;
  };

  InnerMatcher inner_;
};

class EqualsProtoMatcher {
 public:
  EqualsProtoMatcher(std::string expected_text,
                     std::shared_ptr<const google::protobuf::Message> expected,
                     bool partial)
      : expected_text_(std::move(expected_text)),
        expected_(std::move(expected)),
        partial_(partial) {}

  EqualsProtoMatcher AsPartial() const {
    return EqualsProtoMatcher(expected_text_, expected_, true);
  }

  template <typename T>
  bool MatchAndExplain(const T& actual,
                       ::testing::MatchResultListener* listener) const {
    return MatchMessage(AsMessage(actual), listener);
  }
  void DescribeTo(std::ostream* os) const {
    *os << (partial_ ? "partially equals proto " : "equals proto ") << "<"
        << ExpectedText() << ">";
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "does not " << (partial_ ? "partially " : "") << "equal proto <"
        << ExpectedText() << ">";
  }

 private:
  static const google::protobuf::Message* AsMessage(
      const google::protobuf::Message& message) {
    return &message;
  }
  static const google::protobuf::Message* AsMessage(
      const google::protobuf::Message* message) {
    return message;
  }

  std::string ExpectedText() const {
    if (expected_ == nullptr) return expected_text_;
    std::string text;
    google::protobuf::TextFormat::PrintToString(*expected_, &text);
    return text;
  }

  bool MatchMessage(const google::protobuf::Message* actual,
                    ::testing::MatchResultListener* listener) const {
    if (actual == nullptr) {
      *listener << "which is null";
      return false;
    }
    std::unique_ptr<google::protobuf::Message> parsed;
    const google::protobuf::Message* expected = expected_.get();
    if (expected == nullptr) {
      parsed.reset(actual->New());
      if (!google::protobuf::TextFormat::ParseFromString(expected_text_,
                                                         parsed.get())) {
        *listener << "but the expected text does not parse as "
                  << actual->GetDescriptor()->full_name();
        return false;
      }
      expected = parsed.get();
    }
    if (expected->GetDescriptor() != actual->GetDescriptor()) {
      *listener << "whose type " << actual->GetDescriptor()->full_name()
                << " is not " << expected->GetDescriptor()->full_name();
      return false;
    }
    google::protobuf::util::MessageDifferencer differencer;
    if (partial_) {
      differencer.set_scope(
          google::protobuf::util::MessageDifferencer::PARTIAL);
    }
    std::string diff;
    differencer.ReportDifferencesToString(&diff);
    const bool equal = differencer.Compare(*expected, *actual);
    if (!equal) *listener << "with differences:\n" << diff;
    return equal;
  }

  std::string expected_text_;
  std::shared_ptr<const google::protobuf::Message> expected_;
  bool partial_;
};

using Metadata = std::multimap<std::string, std::string>;

inline std::vector<std::string> ValuesFor(const Metadata& metadata,
                                          const std::string& key) {
  std::vector<std::string> values;
  auto [begin, end] = metadata.equal_range(key);
  for (auto it = begin; it != end; ++it) values.push_back(it->second);
  return values;
}
inline std::vector<std::string> ValuesFor(fake::CallContext* call,
                                          const std::string& key) {
  return ValuesFor(call->request_metadata(), key);
}
inline std::vector<std::string> ValuesFor(const fake::RecordedCall& call,
                                          const std::string& key) {
  std::vector<std::string> values;
  for (const auto& entry : call.request_metadata()) {
    if (entry.key() == key) values.push_back(entry.value());
  }
  return values;
}

class HasMetadataMatcher {
 public:
  // `journal_value`, if given, replaces `value` for journal RecordedCalls,
  // which hold sensitive values redacted (Journal::RedactSecret).
  HasMetadataMatcher(std::string key,
                     ::testing::Matcher<const std::string&> value,
                     std::optional<::testing::Matcher<const std::string&>>
                         journal_value = std::nullopt)
      : key_(std::move(key)),
        value_(std::move(value)),
        journal_value_(std::move(journal_value)) {}

  template <typename T>
  bool MatchAndExplain(const T& holder,
                       ::testing::MatchResultListener* listener) const {
    const std::vector<std::string> values = ValuesFor(holder, key_);
    const ::testing::Matcher<const std::string&>& expected =
        std::is_same_v<T, fake::RecordedCall> && journal_value_.has_value()
            ? *journal_value_
            : value_;
    for (const std::string& value : values) {
      if (expected.Matches(value)) return true;
    }
    if (values.empty()) {
      *listener << "which has no \"" << key_ << "\" metadata";
    } else {
      *listener << "whose \"" << key_ << "\" values are "
                << ::testing::PrintToString(values);
    }
    return false;
  }
  void DescribeTo(std::ostream* os) const {
    *os << "has metadata \"" << key_ << "\" with a value that ";
    Describe(os);
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "has no metadata \"" << key_ << "\" with a value that ";
    Describe(os);
  }

 private:
  void Describe(std::ostream* os) const {
    value_.DescribeTo(os);
    if (journal_value_.has_value()) {
      *os << " (in the journal: a value that ";
      journal_value_->DescribeTo(os);
      *os << ")";
    }
  }

  std::string key_;
  ::testing::Matcher<const std::string&> value_;
  std::optional<::testing::Matcher<const std::string&>> journal_value_;
};

inline std::optional<absl::Duration> DeadlineRemaining(
    const fake::RecordedCall& call) {
  if (!call.has_deadline_remaining()) return std::nullopt;
  return absl::Seconds(call.deadline_remaining().seconds()) +
         absl::Nanoseconds(call.deadline_remaining().nanos());
}
inline std::optional<absl::Duration> DeadlineRemaining(
    fake::CallContext* call) {
  if (call->deadline() == absl::InfiniteFuture()) return std::nullopt;
  return call->deadline() - absl::Now();
}

class DeadlineNearMatcher {
 public:
  DeadlineNearMatcher(absl::Duration expected, absl::Duration tolerance)
      : expected_(expected), tolerance_(tolerance) {}

  template <typename T>
  bool MatchAndExplain(const T& call,
                       ::testing::MatchResultListener* listener) const {
    const std::optional<absl::Duration> remaining = DeadlineRemaining(call);
    if (!remaining.has_value()) {
      *listener << "which has no deadline";
      return false;
    }
    *listener << "whose deadline was " << absl::FormatDuration(*remaining)
              << " away on arrival";
    return absl::AbsDuration(*remaining - expected_) <= tolerance_;
  }
  void DescribeTo(std::ostream* os) const {
    *os << "has a deadline " << absl::FormatDuration(expected_) << " (+/- "
        << absl::FormatDuration(tolerance_) << ") away on arrival";
  }
  void DescribeNegationTo(std::ostream* os) const {
    *os << "does not have a deadline " << absl::FormatDuration(expected_)
        << " (+/- " << absl::FormatDuration(tolerance_) << ") away on arrival";
  }

 private:
  absl::Duration expected_;
  absl::Duration tolerance_;
};

}  // namespace matchers_internal

// Matches a status (or StatusOr, grpc::Status, CallResult) whose code is
// `code` (absl::StatusCode, grpc::StatusCode, or a matcher such as `_`) and,
// optionally, whose message matches `message` (a string or string matcher).
template <typename Code>
auto StatusIs(Code code) {
  return ::testing::MakePolymorphicMatcher(matchers_internal::StatusIsMatcher(
      matchers_internal::ToCodeMatcher(code), ::testing::_));
}
template <typename Code, typename MessageMatcher>
auto StatusIs(Code code, MessageMatcher message) {
  return ::testing::MakePolymorphicMatcher(matchers_internal::StatusIsMatcher(
      matchers_internal::ToCodeMatcher(code),
      ::testing::SafeMatcherCast<const std::string&>(
          ::testing::MatcherCast<std::string>(message))));
}

// Matches an OK status (or StatusOr, grpc::Status, CallResult).
inline auto IsOk() {
  return ::testing::MakePolymorphicMatcher(matchers_internal::IsOkMatcher());
}

// Matches an OK StatusOr/CallResult whose value matches `inner`.
template <typename InnerMatcher>
auto IsOkAndHolds(InnerMatcher inner) {
  return matchers_internal::IsOkAndHoldsGenerator<InnerMatcher>(
      std::move(inner));
}

// Matches a protobuf message (or pointer to one) equal to `expected`, given
// as textproto of the actual message's type or as a message. On mismatch it
// explains the field-level differences (MessageDifferencer).
inline auto EqualsProto(std::string expected_textproto) {
  return ::testing::MakePolymorphicMatcher(
      matchers_internal::EqualsProtoMatcher(std::move(expected_textproto),
                                            nullptr, /*partial=*/false));
}
inline auto EqualsProto(const google::protobuf::Message& expected) {
  std::shared_ptr<google::protobuf::Message> copy(expected.New());
  copy->CopyFrom(expected);
  return ::testing::MakePolymorphicMatcher(
      matchers_internal::EqualsProtoMatcher("", std::move(copy),
                                            /*partial=*/false));
}

// Only the fields set in the expected message are compared.
inline auto Partially(
    const ::testing::PolymorphicMatcher<matchers_internal::EqualsProtoMatcher>&
        matcher) {
  return ::testing::MakePolymorphicMatcher(matcher.impl().AsPartial());
}

// Matches a CallContext*, a journal RecordedCall or a metadata multimap that
// has `key` with a value matching `value` (a string or a string matcher).
template <typename ValueMatcher>
auto HasMetadata(std::string key, ValueMatcher value) {
  return ::testing::MakePolymorphicMatcher(
      matchers_internal::HasMetadataMatcher(
          std::move(key), ::testing::SafeMatcherCast<const std::string&>(
                              ::testing::MatcherCast<std::string>(value))));
}

// Matches a call that carried "authorization: Bearer <token>": on a
// CallContext* the value itself, on a journal RecordedCall its redacted form
// (the journal never keeps tokens in the clear; see Journal::RedactSecret).
inline auto HasBearerToken(const std::string& token) {
  const std::string value = absl::StrCat("Bearer ", token);
  return ::testing::MakePolymorphicMatcher(
      matchers_internal::HasMetadataMatcher(
          "authorization", ::testing::Eq(value),
          ::testing::Matcher<const std::string&>(
              ::testing::Eq(fake::Journal::RedactSecret(value)))));
}

namespace matchers_internal {

inline std::string PrintableString(const grpc::Status& status) {
  if (status.ok()) return "OK";
  return absl::StrCat(absl::StatusCodeToString(
                          static_cast<absl::StatusCode>(status.error_code())),
                      ": ", status.error_message());
}
inline std::string PrintableString(grpc::StatusCode code) {
  return absl::StrCat(
      absl::StatusCodeToString(static_cast<absl::StatusCode>(code)), " (",
      static_cast<int>(code), ")");
}
inline bool PrintableEquals(const grpc::Status& a, const grpc::Status& b) {
  return a.error_code() == b.error_code() &&
         a.error_message() == b.error_message() &&
         a.error_details() == b.error_details();
}
inline bool PrintableEquals(grpc::StatusCode a, grpc::StatusCode b) {
  return a == b;
}

}  // namespace matchers_internal

// A grpc::Status or grpc::StatusCode that gtest prints readably
// ("UNAVAILABLE: down", "NOT_FOUND (5)") rather than as raw bytes or a bare
// number, and that compares with ==. gtest finds printers by argument-
// dependent lookup, and the kit does not add functions to namespace grpc;
// wrap values instead (the status matchers above print readably already):
//
//   EXPECT_EQ(Printable(status.error_code()),
//             Printable(grpc::StatusCode::UNAVAILABLE));
//   EXPECT_TRUE(Retryable(status)) << Printable(status);
template <typename T>
class Printable {
 public:
  explicit Printable(T value) : value_(std::move(value)) {}
  const T& value() const { return value_; }

  friend bool operator==(const Printable& a, const Printable& b) {
    return matchers_internal::PrintableEquals(a.value_, b.value_);
  }
  friend bool operator!=(const Printable& a, const Printable& b) {
    return !(a == b);
  }
  friend std::ostream& operator<<(std::ostream& os, const Printable& p) {
    return os << matchers_internal::PrintableString(p.value_);
  }
  friend void PrintTo(const Printable& p, std::ostream* os) { *os << p; }

 private:
  T value_;
};
Printable(const grpc::Status&)->Printable<grpc::Status>;
Printable(grpc::StatusCode)->Printable<grpc::StatusCode>;

// Matches a journal RecordedCall (or a CallContext*, at arrival) whose client
// deadline was `expected` away, within `tolerance`.
inline auto DeadlineNear(absl::Duration expected, absl::Duration tolerance) {
  return ::testing::MakePolymorphicMatcher(
      matchers_internal::DeadlineNearMatcher(expected, tolerance));
}

}  // namespace testing
}  // namespace workflows

#endif  // WORKFLOWS_TESTING_MATCHERS_H_
