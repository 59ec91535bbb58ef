#include "fake_server/scenario_loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "fake_server/in_memory_backend.h"
#include "fake_server/proto_duration.h"
#include "fake_server/script.h"
#include "fake_server/seed.h"
#include "fake_server/text_limits.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "proto/job.pb.h"

namespace workflows {
namespace fake {
namespace {

using descarteslabs::workflows::Job;
using google::protobuf::TextFormat;

// More than this many problems is noise; the first ones say what is wrong.
constexpr int kMaxErrors = 20;
// Characters of the offending line quoted before and after the column.
constexpr int kQuoteBefore = 60;
constexpr int kQuoteAfter = 20;
// Longest error message returned: gRPC sends it as a trailer, and clients
// refuse metadata over 8 KiB by default. Field names and rule names come
// from the input and can be arbitrarily long.
constexpr size_t kMaxMessageBytes = 4096;

absl::Status Bounded(const absl::Status& status) {
  if (status.message().size() <= kMaxMessageBytes) return status;
  return absl::Status(
      status.code(),
      absl::StrCat(status.message().substr(0, kMaxMessageBytes), "... (",
                   status.message().size() - kMaxMessageBytes, " more bytes)"));
}

// The field a syntax error is about when protobuf does not say: the last
// `name:` before the error on its line ("code: 14x" -> "code").
std::string FieldBefore(absl::string_view line, int column) {
  absl::string_view prefix =
      line.substr(0, std::min<size_t>(column, line.size()));
  const size_t colon = prefix.rfind(':');
  if (colon == absl::string_view::npos) return "";
  absl::string_view name =
      absl::StripTrailingAsciiWhitespace(prefix.substr(0, colon));
  size_t start = name.size();
  while (start > 0 &&
         (absl::ascii_isalnum(name[start - 1]) || name[start - 1] == '_')) {
    --start;
  }
  return std::string(name.substr(start));
}

// Formats protobuf's (0-based) parse errors as `source:line:column: message`
// with the offending line and a caret.
class SourceErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  SourceErrorCollector(absl::string_view text, absl::string_view source)
      : lines_(absl::StrSplit(text, '\n')), source_(source) {}

  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (errors_.size() >= kMaxErrors) return;
    std::string error =
        absl::StrCat(source_, ":", line + 1, ":", column + 1, ": ", message);
    if (line >= 0 && line < static_cast<int>(lines_.size())) {
      absl::string_view text = lines_[line];
      // A depth error is about the `{`, not the last field named before it.
      if (!absl::StrContains(message, "field") &&
          !absl::StrContains(message, "too deep")) {
        const std::string field = FieldBefore(text, column);
        if (!field.empty()) absl::StrAppend(&error, " (field \"", field, "\")");
      }
      // A long line (e.g. 10,000 nested levels on one line) is quoted only
      // around the column, so the error still fits a gRPC status message.
      int caret = std::max(0, column);
      std::string prefix, suffix;
      if (caret > kQuoteBefore) {
        text.remove_prefix(std::min<size_t>(caret - kQuoteBefore, text.size()));
        caret = kQuoteBefore + 3;
        prefix = "...";
      }
      if (text.size() > kQuoteBefore + kQuoteAfter) {
        text = text.substr(0, kQuoteBefore + kQuoteAfter);
        suffix = "...";
      }
      absl::StrAppend(&error, "\n  ", prefix, text, suffix, "\n  ",
                      std::string(caret, ' '), "^");
    }
    errors_.push_back(std::move(error));
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber,
                  const std::string&) override {}

  std::string errors() const { return absl::StrJoin(errors_, "\n"); }

 private:
  std::vector<absl::string_view> lines_;
  std::string source_;
  std::vector<std::string> errors_;
};

// Where things are in the source, when we parsed it ourselves.
class Locator {
 public:
  Locator(absl::string_view source,
          const TextFormat::ParseInfoTree* tree = nullptr)
      : source_(source), tree_(tree) {}

  // "file:12:3" for scenario.<field>[index], or "file" when unknown.
  std::string At(absl::string_view field, int index = -1) const {
    if (tree_ != nullptr) {
      const auto* descriptor =
          Scenario::descriptor()->FindFieldByName(std::string(field));
      const TextFormat::ParseLocation location =
          tree_->GetLocation(descriptor, index);
      if (location.line >= 0) {
        return absl::StrCat(source_, ":", location.line + 1, ":",
                            location.column + 1);
      }
    }
    return source_;
  }

  // "file:12:3" for scenario.seed.<field>[index], else where the seed is.
  std::string InSeed(absl::string_view field, int index) const {
    if (tree_ != nullptr) {
      const auto* seed = Scenario::descriptor()->FindFieldByName("seed");
      const auto* descriptor =
          Seed::descriptor()->FindFieldByName(std::string(field));
      const TextFormat::ParseInfoTree* nested =
          tree_->GetTreeForNested(seed, -1);
      if (nested != nullptr && descriptor != nullptr) {
        const TextFormat::ParseLocation location =
            nested->GetLocation(descriptor, index);
        if (location.line >= 0) {
          return absl::StrCat(source_, ":", location.line + 1, ":",
                              location.column + 1);
        }
      }
    }
    return At("seed");
  }

 private:
  std::string source_;
  const TextFormat::ParseInfoTree* tree_;
};

bool PrintableAscii(absl::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

void CheckRules(const Scenario& scenario, const Locator& at,
                std::vector<std::string>* errors) {
  for (int i = 0; i < scenario.rules_size(); ++i) {
    const Rule& rule = scenario.rules(i);
    absl::Status status = ValidateRule(rule);
    if (status.ok()) continue;
    std::string label = absl::StrCat("rules[", i, "]");
    if (!rule.name().empty()) absl::StrAppend(&label, " \"", rule.name(), "\"");
    errors->push_back(absl::StrCat(at.At("rules", i), ": ", label,
                                   " (method \"", rule.method(),
                                   "\"): ", status.message()));
  }
}

void CheckHealth(const Scenario& scenario, const Locator& at,
                 std::vector<std::string>* errors) {
  std::set<std::string> seen;
  for (int i = 0; i < scenario.health_size(); ++i) {
    const HealthEntry& entry = scenario.health(i);
    const std::string label =
        absl::StrCat(at.At("health", i), ": health[", i, "] (service \"",
                     entry.service(), "\"): ");
    if (entry.status() != "UNKNOWN" && entry.status() != "SERVING" &&
        entry.status() != "NOT_SERVING") {
      errors->push_back(absl::StrCat(label, "unknown status \"", entry.status(),
                                     "\"; valid: UNKNOWN, SERVING, "
                                     "NOT_SERVING"));
    }
    if (!seen.insert(entry.service()).second) {
      errors->push_back(absl::StrCat(label, "service listed twice"));
    }
  }
}

void CheckJobProgression(const Scenario& scenario, const Locator& at,
                         std::vector<std::string>* errors) {
  if (!scenario.has_job_progression()) return;
  const JobPlan& p = scenario.job_progression();
  const std::string label =
      absl::StrCat(at.At("job_progression"), ": job_progression.");
  // Zero is valid: an instant job, as in JobProgression::Succeed(zero).
  if (absl::StatusOr<absl::Duration> stage =
          DurationFromProto(p.stage_duration(), "stage_duration");
      !stage.ok()) {
    errors->push_back(absl::StrCat(label, stage.status().message()));
  }
  if (p.final_stage() != Job::UNSPECIFIED &&
      p.final_stage() != Job::SUCCEEDED && p.final_stage() != Job::FAILED &&
      p.final_stage() != Job::CANCELLED) {
    errors->push_back(
        absl::StrCat(label, "final_stage: ", Job::Stage_Name(p.final_stage()),
                     " is not terminal; valid: SUCCEEDED, FAILED, CANCELLED"));
  }
  if (p.final_stage() == Job::CANCELLED &&
      (p.error_code() != descarteslabs::workflows::ERROR_NONE ||
       !p.error_message().empty())) {
    errors->push_back(absl::StrCat(
        label,
        "error_code/error_message: apply to FAILED only; a CANCELLED job has "
        "no error"));
  }
  switch (p.fail_at_stage()) {
    case Job::UNSPECIFIED:
    case Job::QUEUED:
    case Job::PREPARING:
    case Job::RUNNING:
    case Job::SAVING:
      break;
    default:
      errors->push_back(absl::StrCat(
          label, "fail_at_stage: ", Job::Stage_Name(p.fail_at_stage()),
          " is not a running stage; valid: QUEUED, PREPARING, RUNNING, "
          "SAVING"));
  }
}

// Seeds are checked as the server checks them (fake_server/seed.h, with a
// scratch in-memory backend), so the two never disagree about what is valid.
void CheckSeedOf(const Scenario& scenario, const Locator& at,
                 std::vector<std::string>* errors) {
  for (const SeedProblem& problem : CheckSeed(scenario.seed())) {
    errors->push_back(absl::StrCat(at.InSeed(problem.field, problem.index),
                                   ": ", problem.ToString()));
  }
}

void CheckAuth(const Scenario& scenario, const Locator& at,
               std::vector<std::string>* errors) {
  if (!scenario.has_auth()) return;
  const AuthPolicy& auth = scenario.auth();
  const std::string label = absl::StrCat(at.At("auth"), ": auth.");
  auto check_tokens =
      [&](const google::protobuf::RepeatedPtrField<std::string>& tokens,
          absl::string_view field) {
        for (int i = 0; i < tokens.size(); ++i) {
          if (tokens.Get(i).empty() || !PrintableAscii(tokens.Get(i))) {
            errors->push_back(absl::StrCat(label, field, "[", i,
                                           "]: empty or non-printable token"));
          }
        }
      };
  check_tokens(auth.valid_tokens(), "valid_tokens");
  check_tokens(auth.expired_tokens(), "expired_tokens");
  check_tokens(auth.permission_denied_tokens(), "permission_denied_tokens");
  if (!PrintableAscii(auth.permission_denied_retry_after())) {
    errors->push_back(absl::StrCat(
        label, "permission_denied_retry_after: must be printable ASCII"));
  }
}

absl::Status Validate(const Scenario& scenario, const Locator& at) {
  std::vector<std::string> errors;
  CheckRules(scenario, at, &errors);
  CheckHealth(scenario, at, &errors);
  CheckJobProgression(scenario, at, &errors);
  CheckSeedOf(scenario, at, &errors);
  CheckAuth(scenario, at, &errors);
  if (errors.empty()) return absl::OkStatus();
  if (errors.size() > kMaxErrors) {
    const size_t more = errors.size() - kMaxErrors;
    errors.resize(kMaxErrors);
    errors.push_back(absl::StrCat("... and ", more, " more"));
  }
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

}  // namespace

absl::Status ValidateScenario(const Scenario& scenario,
                              absl::string_view source_name) {
  return Validate(scenario, Locator(source_name));
}

absl::StatusOr<Scenario> ParseScenarioText(absl::string_view text,
                                           absl::string_view source_name) {
  return ParseScenarioText(text, source_name, DefaultTextParseLimits());
}

absl::StatusOr<Scenario> ParseScenarioText(absl::string_view text,
                                           absl::string_view source_name,
                                           const TextParseLimits& limits) {
  Scenario scenario;
  SourceErrorCollector collector(text, source_name);
  TextFormat::ParseInfoTree locations;
  absl::Status parsed = ParseTextWithLimits(text, source_name, limits,
                                            &collector, &locations, &scenario);
  if (!parsed.ok()) {
    const std::string errors = collector.errors();
    return Bounded(errors.empty() ? parsed
                                  : absl::InvalidArgumentError(errors));
  }
  absl::Status status = Validate(scenario, Locator(source_name, &locations));
  if (!status.ok()) return Bounded(status);
  return scenario;
}

absl::StatusOr<Scenario> LoadScenarioFile(const std::string& path) {
  return LoadScenarioFile(path, DefaultTextParseLimits());
}

absl::StatusOr<Scenario> LoadScenarioFile(const std::string& path,
                                          const TextParseLimits& limits) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    const int error = errno;
    const std::string message = absl::StrCat(
        "cannot read scenario file \"", path, "\": ", std::strerror(error));
    return error == ENOENT ? absl::NotFoundError(message)
                           : absl::InvalidArgumentError(message);
  }
  if (!S_ISREG(info.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read scenario file \"", path, "\": not a regular file"));
  }
  // Refused before reading: the size cap also bounds the memory a file takes.
  if (info.st_size > limits.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", info.st_size, " bytes, over the limit of ",
                     limits.max_bytes, " bytes (--max_scenario_bytes)"));
  }
  std::ifstream file(path, std::ios::binary);
  if (!file.is_open()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read scenario file \"", path, "\": ", std::strerror(errno)));
  }
  std::stringstream contents;
  contents << file.rdbuf();
  if (file.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read scenario file \"", path, "\": read error"));
  }
  return ParseScenarioText(contents.str(), path, limits);
}

Scenario MergeScenarios(const std::vector<Scenario>& scenarios) {
  Scenario merged;
  std::vector<std::string> names;
  for (const Scenario& scenario : scenarios) {
    if (!scenario.name().empty()) names.push_back(scenario.name());
    if (!scenario.description().empty()) {
      merged.set_description(scenario.description());
    }
    merged.mutable_rules()->MergeFrom(scenario.rules());
    for (const HealthEntry& entry : scenario.health()) {
      auto* health = merged.mutable_health();
      auto same = std::find_if(health->begin(), health->end(),
                               [&](const HealthEntry& earlier) {
                                 return earlier.service() == entry.service();
                               });
      if (same != health->end()) {
        *same = entry;
      } else {
        *health->Add() = entry;
      }
    }
    // Wholesale: a policy or plan is one decision, not a set of fields.
    if (scenario.has_auth()) *merged.mutable_auth() = scenario.auth();
    if (scenario.has_job_progression()) {
      *merged.mutable_job_progression() = scenario.job_progression();
    }
    if (scenario.has_seed()) merged.mutable_seed()->MergeFrom(scenario.seed());
    if (scenario.random_seed() != 0) {
      merged.set_random_seed(scenario.random_seed());
    }
  }
  merged.set_name(absl::StrJoin(names, "+"));
  return merged;
}

}  // namespace fake
}  // namespace workflows
