#include "fake_server/script.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "fake_server/behavior_runner.h"
#include "fake_server/methods.h"
#include "fake_server/proto_duration.h"
#include "fake_server/session.h"
#include "fake_server/text_limits.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/util/message_differencer.h"

namespace workflows {
namespace fake {
namespace {

using google::protobuf::Message;
using google::protobuf::util::MessageDifferencer;

// Keeps the first textproto error with its 1-based position.
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) {
      error_ = absl::StrCat(line + 1, ":", column + 1, ": ", message);
    }
  }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

absl::Status Invalid(absl::string_view field, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", message));
}

absl::Status ValidateDuration(const google::protobuf::Duration& duration,
                              absl::string_view field) {
  return DurationFromProto(duration, field).status();
}

// gRPC rejects (and fails the call on) keys outside [0-9a-z_.-] and non-bin
// values outside printable ASCII; catching that here gives a clear error.
absl::Status ValidateMetadata(
    const google::protobuf::RepeatedPtrField<MetadataEntry>& entries,
    absl::string_view field) {
  for (int i = 0; i < entries.size(); ++i) {
    const MetadataEntry& entry = entries.Get(i);
    const std::string where = absl::StrCat(field, "[", i, "]");
    if (entry.key().empty()) return Invalid(where, "empty metadata key");
    for (char c : entry.key()) {
      if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' ||
            c == '_' || c == '.')) {
        return Invalid(where,
                       absl::StrCat("metadata key \"", entry.key(),
                                    "\" must be lower-case [0-9a-z_.-]"));
      }
    }
    if (absl::EndsWith(entry.key(), "-bin")) continue;
    for (char c : entry.value()) {
      if (c < 0x20 || c > 0x7e) {
        return Invalid(where, absl::StrCat("value of \"", entry.key(),
                                           "\" must be printable ASCII (use "
                                           "a -bin key for bytes)"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateStatusSpec(const StatusSpec& spec,
                                absl::string_view field) {
  absl::StatusOr<grpc::StatusCode> code = ParseStatusCode(spec.code());
  if (!code.ok()) {
    return Invalid(absl::StrCat(field, ".code"), code.status().message());
  }
  for (int i = 0; i < spec.details_size(); ++i) {
    if (spec.details(i).type_url().empty()) {
      return Invalid(absl::StrCat(field, ".details[", i, "]"),
                     "Any without a type_url");
    }
  }
  return absl::OkStatus();
}

// An Any payload must be exactly the method's response type.
absl::Status ValidatePayload(const google::protobuf::Any& any,
                             const MethodInfo& method,
                             absl::string_view field) {
  const std::string& expected = method.response_type->full_name();
  const absl::string_view url = any.type_url();
  const absl::string_view actual = url.substr(url.rfind('/') + 1);
  if (actual != expected) {
    return Invalid(
        field, absl::StrCat("payload type \"", actual, "\" but ",
                            method.bare_name, " returns \"", expected, "\""));
  }
  std::unique_ptr<Message> message(
      google::protobuf::MessageFactory::generated_factory()
          ->GetPrototype(method.response_type)
          ->New());
  if (!message->ParseFromString(any.value())) {
    return Invalid(
        field, absl::StrCat("payload does not parse as \"", expected, "\""));
  }
  return absl::OkStatus();
}

// Rejects StreamScript combinations that would silently do nothing or do
// something other than they seem to (e.g. `stream { delay_per_message {...} }`
// alone, which reads like "slow the backend's stream" but is a zero-message
// stream).
absl::Status ValidateStreamMode(const StreamScript& stream,
                                absl::string_view field) {
  // proto3 records `then_hang: false` as the oneof's choice; it would read as
  // "do not hang" but select nothing else, so say so.
  if ((stream.end_case() == StreamScript::kThenHang && !stream.then_hang()) ||
      (stream.end_case() == StreamScript::kThenReset && !stream.then_reset())) {
    return Invalid(absl::StrCat(field, ".",
                                stream.end_case() == StreamScript::kThenHang
                                    ? "then_hang"
                                    : "then_reset"),
                   "false selects no ending; remove it (unset = end OK)");
  }
  const bool has_delay = stream.delay_per_message().seconds() != 0 ||
                         stream.delay_per_message().nanos() != 0;
  if (!IsPassThroughStream(stream)) {
    if (has_delay && stream.messages().empty()) {
      return Invalid(
          absl::StrCat(field, ".delay_per_message"),
          "has no effect on a stream with no `messages`; to slow the "
          "backend's stream set `pass_through: true`, for a zero-message "
          "stream drop `delay_per_message`");
    }
    return absl::OkStatus();
  }
  if (!stream.messages().empty()) {
    return Invalid(field,
                   "`messages` and pass-through (`pass_through` or "
                   "`pass_through_messages`) exclude each other");
  }
  if (stream.pass_through_messages() == 0 &&
      stream.end_case() != StreamScript::END_NOT_SET) {
    const char* end = stream.has_status()  ? "status"
                      : stream.then_hang() ? "then_hang"
                                           : "then_reset";
    return Invalid(absl::StrCat(field, ".", end),
                   "applies where the stream is cut, but this pass-through "
                   "stream is not cut (the backend ends it); set "
                   "`pass_through_messages` to cut it after that many "
                   "messages");
  }
  return absl::OkStatus();
}

absl::Status ValidateBehavior(const Behavior& behavior,
                              const MethodInfo& method,
                              absl::string_view field) {
  absl::Status status =
      ValidateDuration(behavior.delay(), absl::StrCat(field, ".delay"));
  if (!status.ok()) return status;
  status = ValidateMetadata(behavior.initial_metadata(),
                            absl::StrCat(field, ".initial_metadata"));
  if (!status.ok()) return status;
  status = ValidateMetadata(behavior.trailing_metadata(),
                            absl::StrCat(field, ".trailing_metadata"));
  if (!status.ok()) return status;
  switch (behavior.outcome_case()) {
    case Behavior::kFail:
      return ValidateStatusSpec(behavior.fail(), absl::StrCat(field, ".fail"));
    case Behavior::kReply:
      if (method.server_streaming) {
        return Invalid(
            absl::StrCat(field, ".reply"),
            absl::StrCat("`reply` is for unary methods; ", method.bare_name,
                         " is server-streaming: use `stream`"));
      }
      return ValidatePayload(behavior.reply(), method,
                             absl::StrCat(field, ".reply"));
    case Behavior::kStream: {
      const std::string stream_field = absl::StrCat(field, ".stream");
      if (!method.server_streaming) {
        return Invalid(
            stream_field,
            absl::StrCat("`stream` is for server-streaming methods; ",
                         method.bare_name, " is unary: use `reply` or `fail`"));
      }
      const StreamScript& stream = behavior.stream();
      status = ValidateStreamMode(stream, stream_field);
      if (!status.ok()) return status;
      for (int i = 0; i < stream.messages_size(); ++i) {
        status =
            ValidatePayload(stream.messages(i), method,
                            absl::StrCat(stream_field, ".messages[", i, "]"));
        if (!status.ok()) return status;
      }
      status =
          ValidateDuration(stream.delay_per_message(),
                           absl::StrCat(stream_field, ".delay_per_message"));
      if (!status.ok()) return status;
      return ValidateStatusSpec(stream.status(),
                                absl::StrCat(stream_field, ".status"));
    }
    case Behavior::kReset:
      if (!behavior.reset()) {
        return Invalid(absl::StrCat(field, ".reset"),
                       "false selects no outcome; remove it (no outcome = "
                       "pass through)");
      }
      return absl::OkStatus();
    case Behavior::kPassThrough:
    case Behavior::kHang:
    case Behavior::kExpireDeadline:
    case Behavior::OUTCOME_NOT_SET:
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

// "GetJob" / "rule \"flaky\" (method \"GetJob\")" for error messages.
std::string RuleLabel(const Rule& rule) {
  if (rule.name().empty()) {
    return absl::StrCat("rule (method \"", rule.method(), "\")");
  }
  return absl::StrCat("rule \"", rule.name(), "\" (method \"", rule.method(),
                      "\")");
}

std::string IndexedRuleLabel(const Rule& rule, int index) {
  if (rule.name().empty()) {
    return absl::StrCat("rules[", index, "] (method \"", rule.method(), "\")");
  }
  return absl::StrCat("rules[", index, "] \"", rule.name(), "\" (method \"",
                      rule.method(), "\")");
}

absl::Status Prefixed(absl::string_view prefix, const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat(prefix, ": ", status.message()));
}

// One validated rule, plus its call counter. Shared between rule versions so
// that rescripting other rules does not reset this one's counts.
struct CompiledRule {
  Rule rule;
  const MethodInfo* method = nullptr;
  std::string label;
  // Matcher keys lower-cased: gRPC delivers metadata keys in lower case.
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<std::string> metadata_absent;
  std::unique_ptr<Message> request_pattern;  // null: any request

  absl::Mutex mu;
  uint64_t calls ABSL_GUARDED_BY(mu) = 0;
};

absl::StatusOr<std::unique_ptr<CompiledRule>> Compile(const Rule& rule) {
  absl::StatusOr<const MethodInfo*> method = FindMethod(rule.method());
  if (!method.ok()) return method.status();
  auto compiled = std::make_unique<CompiledRule>();
  compiled->rule = rule;
  compiled->method = *method;

  const CallMatcher& match = rule.match();
  for (int i = 0; i < match.metadata_size(); ++i) {
    if (match.metadata(i).key().empty()) {
      return Invalid(absl::StrCat("match.metadata[", i, "]"),
                     "empty metadata key");
    }
    compiled->metadata.emplace_back(
        absl::AsciiStrToLower(match.metadata(i).key()),
        match.metadata(i).value());
  }
  for (int i = 0; i < match.metadata_absent_size(); ++i) {
    if (match.metadata_absent(i).empty()) {
      return Invalid(absl::StrCat("match.metadata_absent[", i, "]"),
                     "empty metadata key");
    }
    compiled->metadata_absent.push_back(
        absl::AsciiStrToLower(match.metadata_absent(i)));
  }
  if (!match.request_textproto().empty()) {
    compiled->request_pattern.reset(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype((*method)->request_type)
            ->New());
    FirstErrorCollector errors;
    absl::Status parsed = ParseTextWithLimits(
        match.request_textproto(), "match.request_textproto",
        DefaultTextParseLimits(), &errors, /*locations=*/nullptr,
        compiled->request_pattern.get());
    if (!parsed.ok()) {
      if (errors.error().empty()) return parsed;  // over the size cap
      return Invalid("match.request_textproto",
                     absl::StrCat("as ", (*method)->request_type->full_name(),
                                  ": ", errors.error()));
    }
  }

  if (!(rule.probability() >= 0 && rule.probability() <= 1)) {
    return Invalid("probability",
                   absl::StrCat(rule.probability(), " is outside [0, 1]"));
  }
  if (rule.fail_times() > 0 && !rule.has_behavior_on_fail()) {
    return Invalid("behavior_on_fail",
                   absl::StrCat("fail_times is ", rule.fail_times(),
                                " but behavior_on_fail is not set"));
  }
  absl::Status status = ValidateBehavior(rule.behavior(), **method, "behavior");
  if (!status.ok()) return status;
  if (rule.has_behavior_on_fail()) {
    status =
        ValidateBehavior(rule.behavior_on_fail(), **method, "behavior_on_fail");
    if (!status.ok()) return status;
  }
  for (int i = 0; i < rule.sequence_size(); ++i) {
    status = ValidateBehavior(rule.sequence(i), **method,
                              absl::StrCat("sequence[", i, "]"));
    if (!status.ok()) return status;
  }
  return compiled;
}

bool MetadataMatches(const CompiledRule& rule, const CallView& call) {
  static const std::multimap<std::string, std::string> kEmpty;
  const std::multimap<std::string, std::string>& metadata =
      call.metadata != nullptr ? *call.metadata : kEmpty;
  for (const auto& [key, value] : rule.metadata) {
    auto [begin, end] = metadata.equal_range(key);
    // A named copy of the reference: C++17 lambdas cannot capture structured
    // bindings (GCC allows it, clang rejects it).
    const std::string& wanted = value;
    if (std::none_of(begin, end, [&](const auto& entry) {
          return entry.second == wanted;
        })) {
      return false;
    }
  }
  for (const std::string& key : rule.metadata_absent) {
    if (metadata.count(key) > 0) return false;
  }
  return true;
}

bool RequestMatches(const CompiledRule& rule, const CallView& call) {
  if (rule.request_pattern == nullptr) return true;
  if (call.request == nullptr) return false;
  const Message* request = call.request;
  std::unique_ptr<Message> converted;
  if (request->GetDescriptor() != rule.request_pattern->GetDescriptor()) {
    // Same type from another pool (e.g. a DynamicMessage): compare by wire.
    if (request->GetDescriptor()->full_name() !=
        rule.request_pattern->GetDescriptor()->full_name()) {
      return false;
    }
    converted.reset(rule.request_pattern->New());
    if (!converted->ParseFromString(request->SerializeAsString())) return false;
    request = converted.get();
  }
  MessageDifferencer differencer;
  differencer.set_scope(MessageDifferencer::PARTIAL);
  return differencer.Compare(*rule.request_pattern, *request);
}

// The bearer token of "authorization: Bearer <token>", if any.
std::optional<std::string> BearerToken(const CallView& call) {
  if (call.metadata == nullptr) return std::nullopt;
  auto [begin, end] = call.metadata->equal_range("authorization");
  for (auto it = begin; it != end; ++it) {
    absl::string_view value = it->second;
    constexpr absl::string_view kBearer = "bearer ";
    if (value.size() > kBearer.size() &&
        absl::StartsWithIgnoreCase(value, kBearer)) {
      absl::string_view token =
          absl::StripAsciiWhitespace(value.substr(kBearer.size()));
      if (!token.empty()) return std::string(token);
    }
  }
  return std::nullopt;
}

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list,
              absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// `code` is a StatusSpec code name ("UNAUTHENTICATED").
Decision AuthFailure(absl::string_view code, absl::string_view message) {
  Decision decision;
  decision.rule_name = std::string(kAuthPolicyRuleName);
  decision.behavior.mutable_fail()->set_code(std::string(code));
  decision.behavior.mutable_fail()->set_message(std::string(message));
  return decision;
}

}  // namespace

struct Script::State {
  // Newest first.
  std::vector<std::shared_ptr<CompiledRule>> rules;
  AuthPolicy auth;
  // Per session (never ""), newest first; no empty vectors. Empty in the
  // common session-less case, which is all Decide checks then.
  absl::flat_hash_map<std::string, std::vector<std::shared_ptr<CompiledRule>>>
      session_rules;
};

absl::Status ValidateRule(const Rule& rule) { return Compile(rule).status(); }

Script::Script(uint64_t random_seed)
    : random_seed_(random_seed),
      state_(std::make_shared<const State>()),
      rng_(random_seed) {}

Script::~Script() = default;

std::shared_ptr<const Script::State> Script::Snapshot() const {
  return std::atomic_load(&state_);
}

void Script::Publish(std::shared_ptr<const State> next) {
  std::atomic_store(&state_, std::move(next));
}

absl::Status Script::AddRule(const Rule& rule) {
  absl::StatusOr<std::unique_ptr<CompiledRule>> compiled = Compile(rule);
  if (!compiled.ok()) return Prefixed(RuleLabel(rule), compiled.status());
  std::shared_ptr<CompiledRule> added = *std::move(compiled);
  absl::MutexLock lock(&mu_);
  added->label = rule.name().empty()
                     ? absl::StrCat(added->method->bare_name, "#", rules_added_)
                     : rule.name();
  ++rules_added_;
  auto next = std::make_shared<State>(*state_);
  next->rules.insert(next->rules.begin(), std::move(added));
  Publish(std::move(next));
  return absl::OkStatus();
}

namespace {

// The scenario's rules compiled, newest (last) first.
absl::StatusOr<std::vector<std::shared_ptr<CompiledRule>>> CompileAll(
    const Scenario& scenario) {
  std::vector<std::shared_ptr<CompiledRule>> rules;
  rules.reserve(scenario.rules_size());
  for (int i = 0; i < scenario.rules_size(); ++i) {
    absl::StatusOr<std::unique_ptr<CompiledRule>> compiled =
        Compile(scenario.rules(i));
    if (!compiled.ok()) {
      return Prefixed(IndexedRuleLabel(scenario.rules(i), i),
                      compiled.status());
    }
    rules.push_back(*std::move(compiled));
  }
  std::reverse(rules.begin(), rules.end());
  return rules;
}

// The first field of `scenario` that is not per session, "" if none.
absl::string_view ServerWideField(const Scenario& scenario) {
  if (scenario.has_auth()) return "auth";
  if (!scenario.health().empty()) return "health";
  if (scenario.has_seed()) return "seed";
  if (scenario.has_job_progression()) return "job_progression";
  if (scenario.random_seed() != 0) return "random_seed";
  return "";
}

}  // namespace

absl::Status Script::Load(const Scenario& scenario) {
  absl::StatusOr<std::vector<std::shared_ptr<CompiledRule>>> rules =
      CompileAll(scenario);
  if (!rules.ok()) return rules.status();
  {
    absl::MutexLock lock(&mu_);
    auto next = std::make_shared<State>();
    next->rules = *std::move(rules);
    next->auth = scenario.auth();
    next->session_rules = state_->session_rules;
    for (auto& rule : next->rules) {
      rule->label =
          rule->rule.name().empty()
              ? absl::StrCat(rule->method->bare_name, "#", rules_added_++)
              : rule->rule.name();
    }
    Publish(std::move(next));
  }
  Reseed(scenario.random_seed() != 0 ? scenario.random_seed() : random_seed_);
  return absl::OkStatus();
}

absl::Status Script::LoadSession(absl::string_view session,
                                 const Scenario& scenario, bool merge) {
  if (session.empty()) {
    return absl::InvalidArgumentError(
        "LoadSession: the session is empty; load global rules with Load");
  }
  const absl::string_view server_wide = ServerWideField(scenario);
  if (!server_wide.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "session \"", session, "\": ", server_wide,
        " is server-wide; a session scenario may only have rules (load ",
        server_wide, " without a session)"));
  }
  absl::StatusOr<std::vector<std::shared_ptr<CompiledRule>>> rules =
      CompileAll(scenario);
  if (!rules.ok()) {
    return Prefixed(absl::StrCat("session \"", session, "\""), rules.status());
  }
  absl::MutexLock lock(&mu_);
  for (auto& rule : *rules) {
    rule->label =
        rule->rule.name().empty()
            ? absl::StrCat(rule->method->bare_name, "#", rules_added_++)
            : rule->rule.name();
  }
  auto next = std::make_shared<State>(*state_);
  auto existing = next->session_rules.find(session);
  if (merge && existing != next->session_rules.end()) {
    // Newest first: the added rules go in front of the session's others.
    rules->insert(rules->end(), existing->second.begin(),
                  existing->second.end());
  }
  if (rules->empty()) {
    if (existing != next->session_rules.end()) {
      next->session_rules.erase(existing);
    }
  } else {
    next->session_rules[session] = *std::move(rules);
  }
  Publish(std::move(next));
  return absl::OkStatus();
}

void Script::ClearSession(absl::string_view session) {
  absl::MutexLock lock(&mu_);
  if (!state_->session_rules.contains(session)) return;
  auto next = std::make_shared<State>(*state_);
  next->session_rules.erase(next->session_rules.find(session));
  Publish(std::move(next));
}

void Script::Clear() {
  {
    absl::MutexLock lock(&mu_);
    Publish(std::make_shared<const State>());
  }
  Reseed(random_seed_);
}

void Script::SetAuthPolicy(const AuthPolicy& policy) {
  absl::MutexLock lock(&mu_);
  auto next = std::make_shared<State>(*state_);
  next->auth = policy;
  Publish(std::move(next));
}

std::optional<Decision> Script::CheckAuth(const CallView& call) const {
  return CheckAuthIn(*Snapshot(), call);
}

Decision Script::Decide(const CallView& call) {
  return DecideIn(*Snapshot(), call);
}

Decision Script::DecideCall(const CallView& call) {
  const std::shared_ptr<const State> state = Snapshot();
  std::optional<Decision> refused = CheckAuthIn(*state, call);
  if (refused.has_value()) return *std::move(refused);
  return DecideIn(*state, call);
}

std::optional<Decision> Script::CheckAuthIn(const State& state,
                                            const CallView& call) {
  const AuthPolicy& auth = state.auth;
  const bool has_policy = auth.require_bearer_token() ||
                          !auth.valid_tokens().empty() ||
                          !auth.expired_tokens().empty() ||
                          !auth.permission_denied_tokens().empty();
  if (!has_policy) return std::nullopt;
  if (!auth.include_health()) {
    absl::StatusOr<const MethodInfo*> method = FindMethod(call.method);
    if (method.ok() && IsHealthMethod(**method)) return std::nullopt;
  }
  std::optional<std::string> token = BearerToken(call);
  if (!token.has_value()) {
    if (auth.require_bearer_token() || !auth.valid_tokens().empty()) {
      return AuthFailure("UNAUTHENTICATED",
                         "missing authorization: Bearer token");
    }
    return std::nullopt;
  }
  if (Contains(auth.expired_tokens(), *token)) {
    return AuthFailure("UNAUTHENTICATED",
                       "authorization token expired; refresh it and retry");
  }
  if (Contains(auth.permission_denied_tokens(), *token)) {
    Decision decision =
        AuthFailure("PERMISSION_DENIED", "permission denied for this token");
    if (!auth.permission_denied_retry_after().empty()) {
      MetadataEntry* trailer = decision.behavior.add_trailing_metadata();
      trailer->set_key("retry-after");
      trailer->set_value(auth.permission_denied_retry_after());
    }
    return decision;
  }
  if (!auth.valid_tokens().empty() && !Contains(auth.valid_tokens(), *token)) {
    return AuthFailure("UNAUTHENTICATED", "invalid bearer token");
  }
  return std::nullopt;
}

Decision Script::DecideIn(const State& state, const CallView& call) {
  Decision decision;
  // Session-less servers (the common case, and the benchmark's) skip the
  // metadata lookup entirely.
  const std::vector<std::shared_ptr<CompiledRule>>* session_rules = nullptr;
  if (!state.session_rules.empty() && call.metadata != nullptr) {
    const absl::string_view session = SessionOf(*call.metadata);
    if (!session.empty()) {
      auto it = state.session_rules.find(session);
      if (it != state.session_rules.end()) session_rules = &it->second;
    }
  }
  if (session_rules == nullptr && state.rules.empty()) {
    decision.behavior.set_pass_through(true);
    return decision;
  }
  absl::string_view method = call.method;
  if (!absl::StartsWith(method, "/")) {
    absl::StatusOr<const MethodInfo*> found = FindMethod(method);
    if (found.ok()) method = (*found)->full_name;
  }
  // True (and `decision` set) if one of `rules` decides the call.
  auto try_rules =
      [&](const std::vector<std::shared_ptr<CompiledRule>>& rules) {
        for (const std::shared_ptr<CompiledRule>& rule : rules) {
          if (rule->method->full_name != method ||
              !MetadataMatches(*rule, call) || !RequestMatches(*rule, call)) {
            continue;
          }
          const Rule& spec = rule->rule;
          absl::MutexLock lock(&rule->mu);
          if (spec.times() > 0 && rule->calls >= spec.times()) continue;
          if (spec.probability() > 0 && spec.probability() < 1 &&
              Draw() >= spec.probability()) {
            continue;
          }
          const uint64_t index = rule->calls++;
          if (index < spec.fail_times()) {
            decision.behavior = spec.behavior_on_fail();
          } else if (index - spec.fail_times() <
                     static_cast<uint64_t>(spec.sequence_size())) {
            decision.behavior = spec.sequence(index - spec.fail_times());
          } else {
            decision.behavior = spec.behavior();
          }
          decision.rule_name = rule->label;
          return true;
        }
        return false;
      };
  if (session_rules != nullptr && try_rules(*session_rules)) return decision;
  if (try_rules(state.rules)) return decision;
  decision.behavior.set_pass_through(true);
  return decision;
}

double Script::Draw() {
  absl::MutexLock lock(&rng_mu_);
  // 53 random bits, the same on every platform (unlike
  // std::uniform_real_distribution).
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

void Script::Reseed(uint64_t seed) {
  absl::MutexLock lock(&rng_mu_);
  rng_.seed(seed);
}

}  // namespace fake
}  // namespace workflows
