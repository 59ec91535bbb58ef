#include "fake_server/text_limits.h"

#include <limits>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace workflows {
namespace fake {
namespace {

absl::Mutex default_limits_mu(absl::kConstInit);
TextParseLimits* default_limits ABSL_GUARDED_BY(default_limits_mu) = nullptr;

// Forwards errors, rewording protobuf's recursion-limit one so that it names
// the limit in the user's terms and the flag that raises it.
class LimitNamingCollector : public google::protobuf::io::ErrorCollector {
 public:
  LimitNamingCollector(google::protobuf::io::ErrorCollector* next,
                       int max_depth)
      : next_(next), max_depth_(max_depth) {}

  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (next_ == nullptr) return;
    if (absl::StrContains(message, "recursion limit")) {
      next_->AddError(
          line, column,
          absl::StrCat("Message is too deep: nesting limit of ", max_depth_,
                       " levels exceeded (--max_scenario_depth)"));
      return;
    }
    next_->AddError(line, column, message);
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    if (next_ != nullptr) next_->AddWarning(line, column, message);
  }

 private:
  google::protobuf::io::ErrorCollector* const next_;
  const int max_depth_;
};

}  // namespace

TextParseLimits DefaultTextParseLimits() {
  absl::MutexLock lock(&default_limits_mu);
  return default_limits == nullptr ? TextParseLimits() : *default_limits;
}

void SetDefaultTextParseLimits(const TextParseLimits& limits) {
  absl::MutexLock lock(&default_limits_mu);
  if (default_limits == nullptr) {
    default_limits = new TextParseLimits(limits);  // never freed: a setting
  } else {
    *default_limits = limits;
  }
}

absl::Status ValidateTextParseLimits(const TextParseLimits& limits) {
  if (limits.max_depth <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_scenario_depth must be positive, not ", limits.max_depth));
  }
  if (limits.max_bytes <= 0 ||
      limits.max_bytes > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_scenario_bytes must be in 1..",
        std::numeric_limits<int32_t>::max(), ", not ", limits.max_bytes));
  }
  return absl::OkStatus();
}

absl::Status ParseTextWithLimits(
    absl::string_view text, absl::string_view source,
    const TextParseLimits& limits, google::protobuf::io::ErrorCollector* errors,
    google::protobuf::TextFormat::ParseInfoTree* locations,
    google::protobuf::Message* message) {
  message->Clear();
  if (static_cast<int64_t>(text.size()) > limits.max_bytes ||
      text.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", text.size(), " bytes, over the limit of ",
                     limits.max_bytes, " bytes (--max_scenario_bytes)"));
  }
  LimitNamingCollector collector(errors, limits.max_depth);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  if (locations != nullptr) parser.WriteLocationsTo(locations);
  parser.SetRecursionLimit(limits.max_depth);
  // A string_view is not necessarily NUL-terminated; ArrayInputStream takes
  // a size, so no copy is needed. The size fits an int (checked above).
  google::protobuf::io::ArrayInputStream input(text.data(),
                                               static_cast<int>(text.size()));
  if (!parser.Parse(&input, message)) {
    message->Clear();
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": not a valid ",
                     message->GetDescriptor()->full_name(), " textproto"));
  }
  return absl::OkStatus();
}

}  // namespace fake
}  // namespace workflows
