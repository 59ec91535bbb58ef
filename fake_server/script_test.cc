#include "fake_server/script.h"

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "fake_server/session.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "proto/job.pb.h"

namespace workflows {
namespace fake {
namespace {

using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::string_view kGetJob = "/descarteslabs.workflows.JobAPI/GetJob";
constexpr absl::string_view kCreateJob =
    "/descarteslabs.workflows.JobAPI/CreateJob";
constexpr absl::string_view kCheck = "/grpc.health.v1.Health/Check";

Rule ParseRule(absl::string_view text) {
  Rule rule;
  EXPECT_TRUE(
      google::protobuf::TextFormat::ParseFromString(std::string(text), &rule))
      << text;
  return rule;
}

Scenario ParseScenario(absl::string_view text) {
  Scenario scenario;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(std::string(text),
                                                            &scenario))
      << text;
  return scenario;
}

// A short, comparable summary of a decision: "pass", "UNAVAILABLE:msg", ...
std::string Outcome(const Decision& decision) {
  const Behavior& b = decision.behavior;
  switch (b.outcome_case()) {
    case Behavior::kPassThrough:
      return "pass";
    case Behavior::kFail:
      return b.fail().message().empty()
                 ? b.fail().code()
                 : absl::StrCat(b.fail().code(), ":", b.fail().message());
    case Behavior::kHang:
      return "hang";
    case Behavior::kExpireDeadline:
      return "expire";
    case Behavior::kReply:
      return "reply";
    case Behavior::kStream:
      return "stream";
    case Behavior::kReset:
      return "reset";
    case Behavior::OUTCOME_NOT_SET:
      return "unset";
  }
  return "?";
}

class CallBuilder {
 public:
  explicit CallBuilder(absl::string_view method) : method_(method) {}
  CallBuilder& Meta(const std::string& key, const std::string& value) {
    metadata_.emplace(key, value);
    return *this;
  }
  CallBuilder& JobId(const std::string& id) {
    request_.set_id(id);
    return *this;
  }
  CallView View() const { return CallView{method_, &request_, &metadata_}; }

 private:
  std::string method_;
  GetJobRequest request_;
  std::multimap<std::string, std::string> metadata_;
};

std::vector<std::string> DecideN(Script& script, const CallView& call, int n) {
  std::vector<std::string> outcomes;
  for (int i = 0; i < n; ++i) outcomes.push_back(Outcome(script.Decide(call)));
  return outcomes;
}

// Sessions: a session's rules decide its calls first; global rules decide
// everything else, including the session's calls its rules do not match.
TEST(ScriptTest, SessionRulesComeFirstForTheirSessionOnly) {
  Script script;
  ASSERT_TRUE(script
                  .Load(ParseScenario(R"pb(
                    rules {
                      name: "global"
                      method: "GetJob"
                      behavior { fail { code: "ABORTED" } }
                    }
                  )pb"))
                  .ok());
  ASSERT_TRUE(script
                  .LoadSession("a", ParseScenario(R"pb(
                                 rules {
                                   name: "a-once"
                                   method: "GetJob"
                                   times: 1
                                   behavior { fail { code: "UNAVAILABLE" } }
                                 }
                               )pb"))
                  .ok());
  CallBuilder in_a(kGetJob);
  in_a.Meta(std::string(kSessionMetadataKey), "a");
  CallBuilder in_b(kGetJob);
  in_b.Meta(std::string(kSessionMetadataKey), "b");
  const CallBuilder untagged(kGetJob);
  EXPECT_EQ(script.Decide(untagged.View()).rule_name, "global");
  EXPECT_EQ(script.Decide(in_b.View()).rule_name, "global");
  EXPECT_EQ(script.Decide(in_a.View()).rule_name, "a-once");
  // Exhausted: the session's call falls through to the global rule.
  EXPECT_EQ(script.Decide(in_a.View()).rule_name, "global");

  script.ClearSession("a");
  ASSERT_TRUE(script
                  .LoadSession("a", ParseScenario(R"pb(
                                 rules {
                                   name: "a-hang"
                                   method: "GetJob"
                                   behavior { hang: true }
                                 }
                               )pb"))
                  .ok());
  ASSERT_TRUE(script
                  .LoadSession("a", ParseScenario(R"pb(
                                 rules {
                                   name: "a-newer"
                                   method: "GetJob"
                                   match { request_textproto: "id: \"x\"" }
                                   behavior { fail { code: "INTERNAL" } }
                                 }
                               )pb"),
                               /*merge=*/true)
                  .ok());
  EXPECT_EQ(script.Decide(in_a.View()).rule_name, "a-hang");
  in_a.JobId("x");
  EXPECT_EQ(script.Decide(in_a.View()).rule_name, "a-newer");
  // A global load keeps the sessions; Clear drops them.
  ASSERT_TRUE(script.Load(Scenario()).ok());
  EXPECT_EQ(script.Decide(in_a.View()).rule_name, "a-newer");
  EXPECT_EQ(Outcome(script.Decide(untagged.View())), "pass");
  script.Clear();
  EXPECT_EQ(Outcome(script.Decide(in_a.View())), "pass");
}

TEST(ScriptTest, LoadSessionRefusesServerWideFieldsAndEmptySessions) {
  Script script;
  const absl::Status auth = script.LoadSession(
      "a", ParseScenario(R"pb(auth { require_bearer_token: true })pb"));
  EXPECT_EQ(auth.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(auth.message(), HasSubstr("session \"a\": auth is server-wide"));
  const absl::Status bad_rule = script.LoadSession(
      "a", ParseScenario(R"pb(rules { method: "GetJbo" })pb"));
  EXPECT_EQ(bad_rule.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_rule.message(), HasSubstr("session \"a\": rules[0]"));
  EXPECT_EQ(script.LoadSession("", Scenario()).code(),
            absl::StatusCode::kInvalidArgument);
  CallBuilder in_a(kGetJob);
  in_a.Meta(std::string(kSessionMetadataKey), "a");
  EXPECT_EQ(Outcome(script.Decide(in_a.View())), "pass");
  EXPECT_FALSE(script.CheckAuth(in_a.View()).has_value());
}

TEST(ScriptTest, UnscriptedCallsPassThrough) {
  Script script;
  Decision decision = script.Decide(CallBuilder(kGetJob).View());
  EXPECT_TRUE(decision.behavior.pass_through());
  EXPECT_EQ(decision.rule_name, "");
}

TEST(ScriptTest, FailTimesThenBehavior) {
  Script script(42);
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    fail_times: 2
                    behavior_on_fail { fail { code: "UNAVAILABLE" } }
                  )pb"))
                  .ok());
  EXPECT_THAT(DecideN(script, CallBuilder(kGetJob).View(), 4),
              ElementsAre("UNAVAILABLE", "UNAVAILABLE", "unset", "unset"));
  // Other methods are not affected.
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kCreateJob).View())), "pass");
}

TEST(ScriptTest, FailTimesThenSequenceThenBehavior) {
  Script script;
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "/descarteslabs.workflows.JobAPI/GetJob"
                    name: "retry-test"
                    fail_times: 1
                    behavior_on_fail { fail { code: "14" message: "f" } }
                    sequence { fail { code: "ABORTED" message: "s1" } }
                    sequence { expire_deadline: true }
                    sequence { hang: true }
                    behavior { fail { code: "NOT_FOUND" } }
                  )pb"))
                  .ok());
  const CallBuilder builder(kGetJob);
  const CallView call = builder.View();
  EXPECT_THAT(DecideN(script, call, 6),
              ElementsAre("14:f", "ABORTED:s1", "expire", "hang", "NOT_FOUND",
                          "NOT_FOUND"));
  EXPECT_EQ(script.Decide(call).rule_name, "retry-test");
}

TEST(ScriptTest, NewestRuleWinsAndExhaustedRulesFallThrough) {
  Script script;
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    name: "old"
                    behavior { fail { code: "NOT_FOUND" } }
                  )pb"))
                  .ok());
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "JobAPI/GetJob"
                    times: 2
                    behavior { fail { code: "UNAVAILABLE" } }
                  )pb"))
                  .ok());
  const CallBuilder builder(kGetJob);
  const CallView call = builder.View();
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) names.push_back(script.Decide(call).rule_name);
  EXPECT_THAT(names, ElementsAre("GetJob#1", "GetJob#1", "old"));
}

TEST(ScriptTest, CountersSurviveRescriptingOtherRules) {
  Script script;
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    fail_times: 2
                    behavior_on_fail { fail { code: "UNAVAILABLE" } }
                  )pb"))
                  .ok());
  const CallBuilder call(kGetJob);
  EXPECT_EQ(Outcome(script.Decide(call.View())), "UNAVAILABLE");
  ASSERT_TRUE(script.AddRule(ParseRule(R"pb(method: "CreateJob")pb")).ok());
  AuthPolicy policy;
  script.SetAuthPolicy(policy);
  EXPECT_THAT(DecideN(script, call.View(), 2),
              ElementsAre("UNAVAILABLE", "unset"));
}

TEST(ScriptTest, AcceptsBareMethodNamesInCalls) {
  Script script;
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    behavior { fail { code: "ABORTED" } }
                  )pb"))
                  .ok());
  EXPECT_EQ(Outcome(script.Decide(CallBuilder("GetJob").View())), "ABORTED");
  EXPECT_EQ(Outcome(script.Decide(CallBuilder("NoSuchMethod").View())), "pass");
}

TEST(ScriptTest, MatchesMetadataValuesAndAbsence) {
  Script script;
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    match {
                      metadata { key: "X-Tenant" value: "blue" }
                      metadata_absent: "x-debug"
                    }
                    behavior { fail { code: "PERMISSION_DENIED" } }
                  )pb"))
                  .ok());
  EXPECT_EQ(Outcome(script.Decide(
                CallBuilder(kGetJob).Meta("x-tenant", "blue").View())),
            "PERMISSION_DENIED");
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kGetJob)
                                      .Meta("x-tenant", "red")
                                      .Meta("x-tenant", "blue")
                                      .View())),
            "PERMISSION_DENIED");
  EXPECT_EQ(Outcome(script.Decide(
                CallBuilder(kGetJob).Meta("x-tenant", "red").View())),
            "pass");
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kGetJob)
                                      .Meta("x-tenant", "blue")
                                      .Meta("x-debug", "1")
                                      .View())),
            "pass");
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kGetJob).View())), "pass");
}

TEST(ScriptTest, MatchesRequestFieldsPartially) {
  Script script;
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    match { request_textproto: "id: \"job-7\"" }
                    behavior { fail { code: "NOT_FOUND" } }
                  )pb"))
                  .ok());
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kGetJob).JobId("job-7").View())),
            "NOT_FOUND");
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kGetJob).JobId("job-8").View())),
            "pass");
  CallView no_request{kGetJob, nullptr, nullptr};
  EXPECT_EQ(Outcome(script.Decide(no_request)), "pass");
}

TEST(ScriptTest, UnknownMethodIsAnErrorListingValidNames) {
  Script script;
  absl::Status status = script.AddRule(ParseRule(R"pb(
    method: "GetJbo"
    name: "typo"
  )pb"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("rule \"typo\" (method \"GetJbo\")"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("did you mean \"GetJob\"?"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("valid: CancelJob, Check,"));
}

TEST(ScriptTest, BadRequestTextprotoNamesRuleAndPosition) {
  Script script;
  absl::Status status = script.AddRule(ParseRule(R"pb(
    method: "GetJob"
    name: "bad"
    match { request_textproto: "id: \"x\"\n  idd: \"y\"" }
  )pb"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("rule \"bad\" (method \"GetJob\"): "
                        "match.request_textproto: as "
                        "descarteslabs.workflows.GetJobRequest: 2:6: "));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("no field named \"idd\""));
}

TEST(ScriptTest, InvalidStatusCodeListsValidNames) {
  Script script;
  absl::Status status = script.AddRule(ParseRule(R"pb(
    method: "GetJob"
    sequence { pass_through: true }
    sequence { fail { code: "UNAVAILBLE" } }
  )pb"));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("sequence[1].fail.code: unknown status code "
                        "\"UNAVAILBLE\"; valid: OK, CANCELLED"));
}

TEST(ScriptTest, ReplyMustHaveTheResponseType) {
  Script script;
  Rule rule = ParseRule(R"pb(method: "GetJob" name: "wrong-type")pb");
  rule.mutable_behavior()->mutable_reply()->PackFrom(Job::State());
  absl::Status status = script.AddRule(rule);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("rule \"wrong-type\" (method \"GetJob\"): "
                        "behavior.reply: payload type "
                        "\"descarteslabs.workflows.Job.State\" but GetJob "
                        "returns \"descarteslabs.workflows.Job\""));
  rule.mutable_behavior()->mutable_reply()->PackFrom(Job());
  EXPECT_TRUE(script.AddRule(rule).ok());
}

TEST(ScriptTest, StreamMessagesMustHaveTheResponseType) {
  Script script;
  Rule rule = ParseRule(R"pb(method: "WatchJob")pb");
  StreamScript* stream = rule.mutable_behavior()->mutable_stream();
  stream->add_messages()->PackFrom(Job::State());
  stream->add_messages()->PackFrom(Job());
  EXPECT_THAT(script.AddRule(rule).ToString(),
              HasSubstr("behavior.stream.messages[1]: payload type "
                        "\"descarteslabs.workflows.Job\" but WatchJob returns "
                        "\"descarteslabs.workflows.Job.State\""));
}

TEST(ScriptTest, ReplyOnlyForUnaryAndStreamOnlyForStreaming) {
  Script script;
  Rule reply = ParseRule(R"pb(method: "WatchJob")pb");
  reply.mutable_behavior()->mutable_reply()->PackFrom(Job::State());
  EXPECT_THAT(script.AddRule(reply).ToString(),
              HasSubstr("WatchJob is server-streaming: use `stream`"));
  EXPECT_THAT(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    behavior { stream {} }
                  )pb"))
                  .ToString(),
              HasSubstr("GetJob is unary"));
}

// Stream scripts that would silently do nothing (or something else than they
// read as) are rejected, naming the field and the fix; their meaningful
// neighbours load.
TEST(ScriptTest, StreamModesThatWouldDoNothingAreRejected) {
  Script script;
  auto add = [&](absl::string_view stream) {
    return script
        .AddRule(ParseRule(
            absl::StrCat(R"pb(method: "WatchJob" behavior {)pb", stream, " }")))
        .ToString();
  };
  // The audited bug: this read as "slow the backend's WatchJob" but was a
  // zero-message OK stream.
  EXPECT_THAT(add("stream { delay_per_message { seconds: 1 } }"),
              AllOf(HasSubstr("behavior.stream.delay_per_message: has no "
                              "effect on a stream with no `messages`"),
                    HasSubstr("set `pass_through: true`")));
  EXPECT_EQ(add("stream { pass_through: true delay_per_message { seconds: 1 } "
                "}"),
            "OK");
  EXPECT_THAT(add("stream { pass_through: true status { code: \"ABORTED\" } }"),
              HasSubstr("behavior.stream.status: applies where the stream is "
                        "cut, but this pass-through stream is not cut"));
  EXPECT_THAT(add("stream { pass_through: true then_hang: true }"),
              HasSubstr("behavior.stream.then_hang: applies where the stream"));
  EXPECT_EQ(add("stream { pass_through_messages: 2 then_hang: true }"), "OK");
  EXPECT_EQ(add("stream { pass_through_messages: 2 then_reset: true }"), "OK");
  EXPECT_THAT(
      add("stream { pass_through: true messages { "
          "[type.googleapis.com/descarteslabs.workflows.Job.State] {} } }"),
      HasSubstr("`messages` and pass-through (`pass_through` or "
                "`pass_through_messages`) exclude each other"));
  EXPECT_THAT(add("stream { then_hang: false }"),
              HasSubstr("behavior.stream.then_hang: false selects no ending"));
  EXPECT_THAT(add("reset: false"),
              HasSubstr("behavior.reset: false selects no outcome"));
  EXPECT_EQ(add("reset: true"), "OK");
  EXPECT_EQ(add("stream { then_reset: true }"), "OK");
}

TEST(ScriptTest, RejectsOtherBadRules) {
  Script script;
  EXPECT_THAT(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    behavior { delay { seconds: -1 } }
                  )pb"))
                  .ToString(),
              HasSubstr("behavior.delay: negative duration"));
  EXPECT_THAT(
      script
          .AddRule(ParseRule(R"pb(
            method: "GetJob"
            behavior { trailing_metadata { key: "Retry-After" value: "1" } }
          )pb"))
          .ToString(),
      HasSubstr("behavior.trailing_metadata[0]: metadata key "
                "\"Retry-After\" must be lower-case"));
  EXPECT_THAT(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob" probability: 1.5
                  )pb"))
                  .ToString(),
              HasSubstr("probability: 1.5 is outside [0, 1]"));
  EXPECT_THAT(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob" fail_times: 3
                  )pb"))
                  .ToString(),
              HasSubstr("fail_times is 3 but behavior_on_fail is not set"));
  // Nothing was added.
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kGetJob).View())), "pass");
}

std::vector<std::string> ProbabilityRun(Script& script, int n) {
  return DecideN(script, CallBuilder(kGetJob).View(), n);
}

TEST(ScriptTest, ProbabilityIsReproducibleForASeed) {
  const Rule rule = ParseRule(R"pb(
    method: "GetJob"
    probability: 0.3
    behavior { fail { code: "UNAVAILABLE" } }
  )pb");
  Script a(7), b(7), c(8);
  ASSERT_TRUE(a.AddRule(rule).ok());
  ASSERT_TRUE(b.AddRule(rule).ok());
  ASSERT_TRUE(c.AddRule(rule).ok());
  const std::vector<std::string> run_a = ProbabilityRun(a, 1000);
  EXPECT_EQ(run_a, ProbabilityRun(b, 1000));
  EXPECT_NE(run_a, ProbabilityRun(c, 1000));
  const int faults = std::count(run_a.begin(), run_a.end(), "UNAVAILABLE");
  EXPECT_GT(faults, 200);
  EXPECT_LT(faults, 400);

  // Clear + the same rule replays the same sequence.
  a.Clear();
  ASSERT_TRUE(a.AddRule(rule).ok());
  EXPECT_EQ(ProbabilityRun(a, 1000), run_a);
}

TEST(ScriptTest, LoadReseedsFromTheScenario) {
  const Scenario scenario = ParseScenario(R"pb(
    random_seed: 99
    rules {
      method: "GetJob"
      probability: 0.5
      behavior { fail { code: "UNAVAILABLE" } }
    }
  )pb");
  Script a(1), b(2);
  ASSERT_TRUE(a.Load(scenario).ok());
  ASSERT_TRUE(b.Load(scenario).ok());
  EXPECT_EQ(ProbabilityRun(a, 200), ProbabilityRun(b, 200));
}

TEST(ScriptTest, LoadReplacesRulesAndLaterRulesWin) {
  Script script;
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "CreateJob"
                    behavior { fail { code: "INTERNAL" } }
                  )pb"))
                  .ok());
  ASSERT_TRUE(script
                  .Load(ParseScenario(R"pb(
                    rules {
                      method: "GetJob"
                      name: "first"
                      behavior { fail { code: "NOT_FOUND" } }
                    }
                    rules {
                      method: "GetJob"
                      name: "second"
                      behavior { fail { code: "ABORTED" } }
                    }
                  )pb"))
                  .ok());
  EXPECT_EQ(script.Decide(CallBuilder(kGetJob).View()).rule_name, "second");
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kCreateJob).View())), "pass");
}

TEST(ScriptTest, LoadIsAllOrNothing) {
  Script script;
  ASSERT_TRUE(script
                  .Load(ParseScenario(R"pb(
                    rules {
                      method: "GetJob"
                      behavior { fail { code: "NOT_FOUND" } }
                    }
                    auth { require_bearer_token: true }
                  )pb"))
                  .ok());
  absl::Status status = script.Load(ParseScenario(R"pb(
    rules {
      method: "CreateJob"
      behavior { fail { code: "INTERNAL" } }
    }
    rules { method: "GetJbo" }
  )pb"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("rules[1] (method \"GetJbo\"): unknown method"));
  // The old version is intact: rules and auth.
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kGetJob).View())), "NOT_FOUND");
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kCreateJob).View())), "pass");
  EXPECT_TRUE(script.CheckAuth(CallBuilder(kGetJob).View()).has_value());

  script.Clear();
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kGetJob).View())), "pass");
  EXPECT_FALSE(script.CheckAuth(CallBuilder(kGetJob).View()).has_value());
}

TEST(ScriptAuthTest, NoPolicyLetsEverythingThrough) {
  Script script;
  EXPECT_FALSE(script.CheckAuth(CallBuilder(kGetJob).View()).has_value());
}

TEST(ScriptAuthTest, RequiresBearerToken) {
  Script script;
  AuthPolicy policy;
  policy.set_require_bearer_token(true);
  script.SetAuthPolicy(policy);

  std::optional<Decision> missing =
      script.CheckAuth(CallBuilder(kGetJob).View());
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->rule_name, kAuthPolicyRuleName);
  EXPECT_EQ(Outcome(*missing),
            "UNAUTHENTICATED:missing authorization: Bearer token");
  EXPECT_TRUE(
      script
          .CheckAuth(
              CallBuilder(kGetJob).Meta("authorization", "Basic abc").View())
          .has_value());
  EXPECT_FALSE(
      script
          .CheckAuth(
              CallBuilder(kGetJob).Meta("authorization", "Bearer t0k").View())
          .has_value());
}

TEST(ScriptAuthTest, TokenLists) {
  Script script;
  AuthPolicy policy;
  policy.add_valid_tokens("good");
  policy.add_expired_tokens("old");
  policy.add_permission_denied_tokens("reader");
  policy.set_permission_denied_retry_after("30");
  script.SetAuthPolicy(policy);
  auto check = [&](const std::string& token) {
    return script.CheckAuth(
        CallBuilder(kGetJob).Meta("authorization", "Bearer " + token).View());
  };
  EXPECT_FALSE(check("good").has_value());

  std::optional<Decision> expired = check("old");
  ASSERT_TRUE(expired.has_value());
  EXPECT_EQ(expired->behavior.fail().code(), "UNAUTHENTICATED");
  EXPECT_THAT(expired->behavior.fail().message(), HasSubstr("token expired"));

  std::optional<Decision> denied = check("reader");
  ASSERT_TRUE(denied.has_value());
  EXPECT_EQ(denied->behavior.fail().code(), "PERMISSION_DENIED");
  ASSERT_EQ(denied->behavior.trailing_metadata_size(), 1);
  EXPECT_EQ(denied->behavior.trailing_metadata(0).key(), "retry-after");
  EXPECT_EQ(denied->behavior.trailing_metadata(0).value(), "30");

  std::optional<Decision> unknown = check("stranger");
  ASSERT_TRUE(unknown.has_value());
  EXPECT_EQ(Outcome(*unknown), "UNAUTHENTICATED:invalid bearer token");

  // valid_tokens implies a token is required.
  EXPECT_EQ(Outcome(*script.CheckAuth(CallBuilder(kGetJob).View())),
            "UNAUTHENTICATED:missing authorization: Bearer token");
}

TEST(ScriptAuthTest, HealthIsExemptUnlessIncluded) {
  Script script;
  AuthPolicy policy;
  policy.set_require_bearer_token(true);
  script.SetAuthPolicy(policy);
  EXPECT_FALSE(script.CheckAuth(CallBuilder(kCheck).View()).has_value());
  policy.set_include_health(true);
  script.SetAuthPolicy(policy);
  EXPECT_TRUE(script.CheckAuth(CallBuilder(kCheck).View()).has_value());
}

TEST(ScriptAuthTest, SetAuthPolicyKeepsRules) {
  Script script;
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    behavior { fail { code: "ABORTED" } }
                  )pb"))
                  .ok());
  script.SetAuthPolicy(AuthPolicy());
  EXPECT_EQ(Outcome(script.Decide(CallBuilder(kGetJob).View())), "ABORTED");
}

// Rescripting while 8 threads decide: every decision comes from one rule
// version (its rule name and message agree) and versions never go backwards
// within a thread.
TEST(ScriptConcurrencyTest, RescriptingWhileDecidingIsConsistent) {
  Script script;
  auto version = [](int v) {
    return ParseScenario(absl::StrFormat(R"txt(
      rules {
        method: "GetJob"
        name: "v%1$d-any"
        behavior { fail { code: "UNAVAILABLE" message: "%1$d" } }
      }
      rules {
        method: "GetJob"
        name: "v%1$d-blue"
        match { metadata { key: "x-tenant" value: "blue" } }
        sequence { fail { code: "ABORTED" message: "%1$d" } }
        behavior { fail { code: "NOT_FOUND" message: "%1$d" } }
      })txt",
                                         v));
  };
  ASSERT_TRUE(script.Load(version(0)).ok());

  constexpr int kVersions = 300;
  std::atomic<bool> done{false};
  std::atomic<int> inconsistent{0}, backwards{0}, decisions{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      CallBuilder call(kGetJob);
      if (t % 2 == 0) call.Meta("x-tenant", "blue");
      int last = -1;
      while (!done.load()) {
        const Decision d = script.Decide(call.View());
        ++decisions;
        // rule_name "v<N>-..." must carry message "<N>".
        absl::string_view name = d.rule_name;
        const size_t dash = name.find('-');
        int from_name = -1, from_message = -2;
        if (!absl::ConsumePrefix(&name, "v") ||
            !absl::SimpleAtoi(name.substr(0, dash - 1), &from_name) ||
            !absl::SimpleAtoi(d.behavior.fail().message(), &from_message) ||
            from_name != from_message) {
          ++inconsistent;
        }
        if (from_name < last) ++backwards;
        last = from_name;
      }
    });
  }
  for (int v = 1; v <= kVersions; ++v) {
    ASSERT_TRUE(script.Load(version(v)).ok());
  }
  // Let the deciders see the final version before stopping them.
  while (decisions.load() < 1000) std::this_thread::yield();
  done = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(inconsistent.load(), 0);
  EXPECT_EQ(backwards.load(), 0);
  EXPECT_EQ(script.Decide(CallBuilder(kGetJob).View()).rule_name,
            absl::StrCat("v", kVersions, "-any"));
}

// Counters are exact under contention: fail_times 100 fails exactly 100 of
// 8 x 50 concurrent calls.
TEST(ScriptConcurrencyTest, CountersAreExactUnderContention) {
  Script script;
  ASSERT_TRUE(script
                  .AddRule(ParseRule(R"pb(
                    method: "GetJob"
                    fail_times: 100
                    behavior_on_fail { fail { code: "UNAVAILABLE" } }
                    times: 300
                  )pb"))
                  .ok());
  std::atomic<int> failures{0}, passes{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      const CallBuilder call(kGetJob);
      for (int i = 0; i < 50; ++i) {
        const Decision d = script.Decide(call.View());
        if (d.behavior.has_fail()) ++failures;
        if (d.behavior.pass_through()) ++passes;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 100);
  EXPECT_EQ(passes.load(), 100);  // 400 calls - 300 `times`.
}

}  // namespace
}  // namespace fake
}  // namespace workflows
