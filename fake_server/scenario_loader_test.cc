#include "fake_server/scenario_loader.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "fake_server/script.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/job.pb.h"
#include "proto/rpc_status.pb.h"

namespace workflows {
namespace fake {
namespace {

using ::descarteslabs::workflows::Job;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kEverything[] = "fake_server/testdata/everything.textproto";

std::string Message(const absl::Status& status) {
  return std::string(status.message());
}

TEST(LoadScenarioFileTest, LoadsEveryFeatureIncludingExpandedAny) {
  absl::StatusOr<Scenario> scenario = LoadScenarioFile(kEverything);
  ASSERT_TRUE(scenario.ok()) << scenario.status();
  EXPECT_EQ(scenario->name(), "everything");
  ASSERT_EQ(scenario->rules_size(), 5);

  google::rpc::RetryInfo retry;
  ASSERT_TRUE(
      scenario->rules(0).behavior_on_fail().fail().details(0).UnpackTo(&retry));
  EXPECT_EQ(retry.retry_delay().seconds(), 1);

  Job job;
  ASSERT_TRUE(scenario->rules(2).behavior().reply().UnpackTo(&job));
  EXPECT_EQ(job.id(), "job-7");
  EXPECT_EQ(job.state().stage(), Job::RUNNING);

  Job::State state;
  ASSERT_TRUE(
      scenario->rules(3).behavior().stream().messages(1).UnpackTo(&state));
  EXPECT_EQ(state.stage(), Job::RUNNING);

  EXPECT_EQ(scenario->health(1).status(), "NOT_SERVING");
  EXPECT_EQ(scenario->auth().permission_denied_retry_after(), "30");
  EXPECT_EQ(scenario->job_progression().error_code(),
            descarteslabs::workflows::ERROR_OOM);
  EXPECT_EQ(scenario->seed().jobs(0).id(), "job-1");
  EXPECT_EQ(scenario->seed().xyzs(0).id(), "xyz-ndvi");
  EXPECT_EQ(scenario->seed().access_grants(0).entity().id(), "you@example.com");
  EXPECT_EQ(scenario->seed().xyz_session_logs(0).records(0).record().message(),
            "tile 3/2/1 failed");

  // And a Script accepts it.
  Script script;
  EXPECT_TRUE(script.Load(*scenario).ok());
}

TEST(LoadScenarioFileTest, MissingFileIsNotFoundNamingThePath) {
  absl::StatusOr<Scenario> scenario =
      LoadScenarioFile("/nonexistent/dir/slow.textproto");
  EXPECT_EQ(scenario.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(scenario.status()),
              HasSubstr("cannot read scenario file "
                        "\"/nonexistent/dir/slow.textproto\""));
}

TEST(LoadScenarioFileTest, DirectoryIsInvalidArgument) {
  absl::StatusOr<Scenario> scenario = LoadScenarioFile("fake_server");
  EXPECT_EQ(scenario.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(scenario.status()), HasSubstr("not a regular file"));
}

TEST(LoadScenarioFileTest, ErrorsAreNamedAfterThePath) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/bad_method.textproto");
  {
    std::ofstream out(path);
    out << "name: \"bad\"\n"
           "rules { method: \"GetJob\" }\n"
           "rules {\n"
           "  method: \"GetJbo\"\n"
           "}\n";
  }
  absl::StatusOr<Scenario> scenario = LoadScenarioFile(path);
  ASSERT_FALSE(scenario.ok());
  EXPECT_EQ(scenario.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(scenario.status()),
              HasSubstr(absl::StrCat(path,
                                     ":3:1: rules[1] (method "
                                     "\"GetJbo\"): unknown method "
                                     "\"GetJbo\"; did you mean "
                                     "\"GetJob\"? valid: CancelJob, "
                                     "Check, CreateAccessGrant")));
  std::remove(path.c_str());
}

TEST(ParseScenarioTextTest, UnknownFieldGivesLineColumnAndField) {
  absl::StatusOr<Scenario> scenario = ParseScenarioText(
      "name: \"x\"\n"
      "rules {\n"
      "  methd: \"GetJob\"\n"
      "}\n",
      "slow.textproto");
  ASSERT_FALSE(scenario.ok());
  EXPECT_EQ(scenario.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(scenario.status()),
              HasSubstr("slow.textproto:3:8: Message type "
                        "\"workflows.fake.Rule\" has no field named "
                        "\"methd\"."));
  // The offending line is quoted.
  EXPECT_THAT(Message(scenario.status()), HasSubstr("\n    methd: \"GetJob\""));
}

TEST(ParseScenarioTextTest, BadValueNamesTheField) {
  absl::StatusOr<Scenario> scenario = ParseScenarioText(
      "rules {\n"
      "  method: \"GetJob\"\n"
      "  fail_times: many\n"
      "}\n",
      "flaky.textproto");
  ASSERT_FALSE(scenario.ok());
  EXPECT_THAT(Message(scenario.status()), HasSubstr("flaky.textproto:3:15: "));
  EXPECT_THAT(Message(scenario.status()), HasSubstr("(field \"fail_times\")"));
}

TEST(ParseScenarioTextTest, UnknownAnyTypeIsAnError) {
  absl::StatusOr<Scenario> scenario = ParseScenarioText(
      R"txt(rules {
  method: "GetJob"
  behavior { reply { [type.googleapis.com/descarteslabs.workflows.Jobb] {} } }
})txt",
      "any.textproto");
  ASSERT_FALSE(scenario.ok());
  EXPECT_THAT(Message(scenario.status()), HasSubstr("any.textproto:3:"));
  EXPECT_THAT(Message(scenario.status()),
              HasSubstr("descarteslabs.workflows.Jobb"));
}

TEST(ParseScenarioTextTest, AnyOfTheWrongTypeNamesRuleExpectedAndActual) {
  absl::StatusOr<Scenario> scenario = ParseScenarioText(
      R"txt(rules {
  name: "canned"
  method: "GetJob"
  behavior {
    reply { [type.googleapis.com/descarteslabs.workflows.Job.State] {} }
  }
})txt",
      "reply.textproto");
  ASSERT_FALSE(scenario.ok());
  EXPECT_THAT(Message(scenario.status()),
              HasSubstr("reply.textproto:1:1: rules[0] \"canned\" (method "
                        "\"GetJob\"): behavior.reply: payload type "
                        "\"descarteslabs.workflows.Job.State\" but GetJob "
                        "returns \"descarteslabs.workflows.Job\""));
}

TEST(ParseScenarioTextTest, ReportsEverySemanticProblem) {
  absl::StatusOr<Scenario> scenario = ParseScenarioText(
      R"txt(
rules { method: "GetJob" behavior { fail { code: "UNAVAILBLE" } } }
rules { method: "GetJob" match { request_textproto: "idd: 1" } }
rules { method: "GetJob" behavior { delay { seconds: -5 } } }
health { service: "" status: "SERVNG" }
health { service: "" status: "SERVING" }
job_progression { stage_duration { seconds: -1 } final_stage: RUNNING }
)txt",
      "many.textproto");
  ASSERT_FALSE(scenario.ok());
  const std::string message = Message(scenario.status());
  EXPECT_THAT(message, HasSubstr("many.textproto:2:1: rules[0] (method "
                                 "\"GetJob\"): behavior.fail.code: unknown "
                                 "status code \"UNAVAILBLE\"; valid: OK,"));
  EXPECT_THAT(message, HasSubstr("many.textproto:3:1: rules[1] (method "
                                 "\"GetJob\"): match.request_textproto: as "
                                 "descarteslabs.workflows.GetJobRequest: 1:4: "
                                 "Message type "
                                 "\"descarteslabs.workflows.GetJobRequest\" "
                                 "has no field named \"idd\""));
  EXPECT_THAT(message, HasSubstr("many.textproto:4:1: rules[2] (method "
                                 "\"GetJob\"): behavior.delay: negative "
                                 "duration"));
  EXPECT_THAT(message,
              HasSubstr("many.textproto:5:1: health[0] (service \"\"): "
                        "unknown status \"SERVNG\"; valid: UNKNOWN, SERVING, "
                        "NOT_SERVING"));
  EXPECT_THAT(message, HasSubstr("many.textproto:6:1: health[1] (service "
                                 "\"\"): service listed twice"));
  EXPECT_THAT(message, HasSubstr("job_progression.stage_duration: negative"));
  EXPECT_THAT(message, HasSubstr("job_progression.final_stage: RUNNING is not "
                                 "terminal"));
}

// A GetJob rule replying a Job whose typespec nests `levels` map keys, each
// key a Typespec holding the next: the text depth is 5 (rules, behavior,
// reply, Job, typespec) plus 3 per level (map, items, key).
std::string DeepScenario(int levels) {
  std::string text =
      "rules {\n  method: \"GetJob\"\n  behavior {\n    reply {\n"
      "      [type.googleapis.com/descarteslabs.workflows.Job] {\n"
      "        typespec {\n";
  for (int i = 0; i < levels; ++i)
    absl::StrAppend(&text, "map { items { key {");
  for (int i = 0; i < levels; ++i) absl::StrAppend(&text, "} } }");
  absl::StrAppend(&text, "\n        }\n      }\n    }\n  }\n}\n");
  return text;
}

TEST(ParseLimitsTest, NestingBeyondTheLimitIsRefusedWithItsPosition) {
  // 10,000 levels used to overflow the parser's stack.
  absl::StatusOr<Scenario> scenario =
      ParseScenarioText(DeepScenario(10000), "deep.textproto");
  ASSERT_EQ(scenario.status().code(), absl::StatusCode::kInvalidArgument);
  // The limit is hit inside the nesting line (line 7), at the `{` that went
  // too deep.
  EXPECT_THAT(Message(scenario.status()), HasSubstr("deep.textproto:7:"));
  EXPECT_THAT(Message(scenario.status()),
              HasSubstr("nesting limit of 100 levels exceeded "
                        "(--max_scenario_depth)"));
  // No "(field ...)" hint: the last field named on the line is not the
  // problem.
  EXPECT_THAT(Message(scenario.status()), Not(HasSubstr("(field")));
}

TEST(ParseLimitsTest, DepthErrorsNameNoFieldFromEarlierOnTheLine) {
  // `id:` is the last field named before the `{` that went too deep; a
  // "(field "id")" hint would point at the wrong thing.
  std::string text = R"(seed { jobs { id: "j" typespec { )";
  for (int i = 0; i < 200; ++i) absl::StrAppend(&text, "composite { params { ");
  for (int i = 0; i < 200; ++i) absl::StrAppend(&text, "} } ");
  absl::StrAppend(&text, "} } }\n");
  const std::string message =
      Message(ParseScenarioText(text, "deep.textproto").status());
  EXPECT_THAT(message, HasSubstr("deep.textproto:1:"));
  EXPECT_THAT(message, HasSubstr("too deep"));
  EXPECT_THAT(message, Not(HasSubstr("(field")));
}

TEST(ParseLimitsTest, ErrorsQuoteLongLinesOnlyAroundTheColumn) {
  // The nesting is one 190 KB line; quoting it whole made the status too
  // big for a gRPC trailer (clients refuse metadata over 8 KiB).
  const std::string message =
      Message(ParseScenarioText(DeepScenario(10000), "deep").status());
  EXPECT_LT(message.size(), 400u);
  EXPECT_THAT(message, HasSubstr("\n  ..."));
  EXPECT_THAT(message, HasSubstr("{map { items { key {map"));
  EXPECT_THAT(message, HasSubstr("...\n  " + std::string(63, ' ') + "^"));
}

TEST(ParseLimitsTest, ErrorMessagesAreBounded) {
  // Unknown field names are quoted by protobuf, and come from the input.
  const std::string text = std::string(10000, 'f') + ": 1\n";
  const std::string message = Message(ParseScenarioText(text, "x").status());
  EXPECT_LE(message.size(), 4200u);
  EXPECT_THAT(message, HasSubstr("more bytes)"));
}

TEST(ParseLimitsTest, NestingWithinTheLimitParsesAndTheLimitIsAnOption) {
  // 5 + 3 * 31 = 98 levels: accepted by default.
  EXPECT_TRUE(ParseScenarioText(DeepScenario(31), "ok").ok());
  EXPECT_FALSE(ParseScenarioText(DeepScenario(40), "deep").ok());
  // 5 + 3 * 15 = 50.
  TextParseLimits limits;
  limits.max_depth = 50;
  EXPECT_TRUE(ParseScenarioText(DeepScenario(15), "ok", limits).ok());
  EXPECT_THAT(
      Message(ParseScenarioText(DeepScenario(16), "deep", limits).status()),
      HasSubstr("nesting limit of 50 levels exceeded"));
}

TEST(ParseLimitsTest, TextOverTheSizeCapIsRefusedNamingTheCap) {
  TextParseLimits limits;
  limits.max_bytes = 100;
  const std::string text =
      absl::StrCat("description: \"", std::string(200, 'x'), "\"");
  absl::StatusOr<Scenario> scenario =
      ParseScenarioText(text, "huge.textproto", limits);
  ASSERT_EQ(scenario.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(scenario.status()),
              HasSubstr("huge.textproto: 215 bytes, over the limit of 100 "
                        "bytes (--max_scenario_bytes)"));
  limits.max_bytes = 215;
  EXPECT_TRUE(ParseScenarioText(text, "huge.textproto", limits).ok());
}

TEST(ParseLimitsTest, DefaultSizeCapIsOneMebibyte) {
  EXPECT_EQ(TextParseLimits().max_bytes, 1 << 20);
  EXPECT_EQ(TextParseLimits().max_depth, 100);
  const std::string text =
      absl::StrCat("description: \"", std::string(1 << 20, 'x'), "\"");
  EXPECT_THAT(Message(ParseScenarioText(text, "big").status()),
              HasSubstr("over the limit of 1048576 bytes"));
}

TEST(ParseLimitsTest, FileOverTheSizeCapIsRefusedBeforeReading) {
  const std::string path =
      absl::StrCat(testing::TempDir(), "/huge_scenario.textproto");
  {
    std::ofstream file(path);
    file << "description: \"" << std::string(300, 'x') << "\"\n";
  }
  TextParseLimits limits;
  limits.max_bytes = 100;
  absl::StatusOr<Scenario> scenario = LoadScenarioFile(path, limits);
  ASSERT_EQ(scenario.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(scenario.status()),
              HasSubstr(absl::StrCat(path,
                                     ": 316 bytes, over the limit of "
                                     "100 bytes")));
  std::remove(path.c_str());
}

TEST(ParseLimitsTest, DeepRequestTextprotoIsRefusedNamingTheRule) {
  // The rule's request pattern is a textproto of its own, parsed with the
  // same limits: depth 1 per `{` inside the string.
  std::string pattern = "typespec {";
  for (int i = 0; i < 200; ++i)
    absl::StrAppend(&pattern, "map { items { key {");
  Rule rule;
  rule.set_method("CreateJob");
  rule.mutable_match()->set_request_textproto(pattern);
  rule.mutable_behavior()->set_hang(true);
  const absl::Status status = ValidateRule(rule);
  ASSERT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status),
              HasSubstr("match.request_textproto: as "
                        "descarteslabs.workflows.CreateJobRequest: 1:"));
  EXPECT_THAT(Message(status), HasSubstr("nesting limit of 100 levels"));
}

TEST(ParseLimitsTest, ProcessDefaultsApplyWhereNoLimitsArePassed) {
  const TextParseLimits saved = DefaultTextParseLimits();
  TextParseLimits lowered;
  lowered.max_bytes = 10;
  SetDefaultTextParseLimits(lowered);
  EXPECT_THAT(Message(ParseScenarioText("name: \"long enough\"", "x").status()),
              HasSubstr("over the limit of 10 bytes"));
  SetDefaultTextParseLimits(saved);
  EXPECT_TRUE(ParseScenarioText("name: \"long enough\"", "x").ok());
}

TEST(ParseLimitsTest, LimitsMustBePositive) {
  TextParseLimits limits;
  EXPECT_TRUE(ValidateTextParseLimits(limits).ok());
  limits.max_depth = 0;
  EXPECT_THAT(Message(ValidateTextParseLimits(limits)),
              HasSubstr("max_scenario_depth must be positive"));
  limits = TextParseLimits();
  limits.max_bytes = int64_t{1} << 40;
  EXPECT_THAT(Message(ValidateTextParseLimits(limits)),
              HasSubstr("max_scenario_bytes must be in 1..2147483647"));
}

TEST(ValidateScenarioTest, NamesSourceWithoutPositions) {
  Scenario scenario;
  scenario.add_rules()->set_method("Frobnicate");
  absl::Status status = ValidateScenario(scenario, "control-service");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status),
              HasSubstr("control-service: rules[0] (method \"Frobnicate\"): "
                        "unknown method \"Frobnicate\";"));
  EXPECT_THAT(Message(status), Not(HasSubstr("did you mean")));
  EXPECT_THAT(Message(status), HasSubstr("WatchJob"));

  EXPECT_TRUE(ValidateScenario(Scenario(), "empty").ok());
}

TEST(ValidateScenarioTest, ChecksAuthTokens) {
  Scenario scenario;
  scenario.mutable_auth()->add_valid_tokens("");
  EXPECT_THAT(Message(ValidateScenario(scenario, "auth")),
              HasSubstr("auth: auth.valid_tokens[0]: empty or non-printable"));
}

// Zero means instant (as JobProgression::Succeed(absl::ZeroDuration()) does
// in C++); the scenario language used to refuse it. The boundary: -1 ns is
// an error with its position, 0 and 1 ns load.
TEST(ValidateScenarioTest, ZeroStageDurationIsInstantNegativeIsAnError) {
  EXPECT_TRUE(ParseScenarioText(
                  "job_progression { stage_duration { seconds: 0 } }", "zero")
                  .ok());
  EXPECT_TRUE(
      ParseScenarioText("job_progression { stage_duration {} }", "{}").ok());
  EXPECT_TRUE(
      ParseScenarioText("job_progression { stage_duration { nanos: 1 } }", "ns")
          .ok());
  absl::StatusOr<Scenario> negative = ParseScenarioText(
      "\njob_progression { stage_duration { nanos: -1 } }", "negative");
  ASSERT_FALSE(negative.ok());
  EXPECT_THAT(Message(negative.status()),
              HasSubstr("negative:2:1: job_progression.stage_duration: "
                        "negative"));
  EXPECT_TRUE(
      ParseScenarioText("job_progression { final_stage: FAILED }", "unset")
          .ok());
}

TEST(ValidateScenarioTest, CancelledIsAFinalStageWithoutAnError) {
  absl::StatusOr<Scenario> cancelled = ParseScenarioText(
      "job_progression { final_stage: CANCELLED fail_at_stage: PREPARING }",
      "cancelled");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->job_progression().final_stage(), Job::CANCELLED);

  absl::StatusOr<Scenario> with_error = ParseScenarioText(
      "\n\njob_progression { final_stage: CANCELLED error_message: 'x' }",
      "error.textproto");
  ASSERT_FALSE(with_error.ok());
  EXPECT_THAT(Message(with_error.status()),
              HasSubstr("error.textproto:3:1: job_progression.error_code/"
                        "error_message: apply to FAILED only; a CANCELLED job "
                        "has no error"));
  absl::StatusOr<Scenario> running =
      ParseScenarioText("job_progression { final_stage: RUNNING }", "running");
  ASSERT_FALSE(running.ok());
  EXPECT_THAT(Message(running.status()),
              HasSubstr("final_stage: RUNNING is not terminal; valid: "
                        "SUCCEEDED, FAILED, CANCELLED"));
}

TEST(ValidateScenarioTest, SeedWorkflowsAreCheckedWithTheirPosition) {
  absl::StatusOr<Scenario> bad = ParseScenarioText(
      "name: 'x'\nseed { workflows { title: 'no id' } }", "seed.textproto");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(
      Message(bad.status()),
      HasSubstr("seed.textproto:2:8: seed.workflows[0]: id is required"));
  EXPECT_TRUE(
      ParseScenarioText("seed { workflows { id: 'a@b.c:w' } }", "ok").ok());
}

TEST(ValidateScenarioTest, SeedsEveryResource) {
  absl::StatusOr<Scenario> scenario = ParseScenarioText(
      R"pb(
        seed {
          xyzs { id: "xyz-a" name: "tiles" }
          xyzs { name: "no id: one is assigned" }
          access_grants {
            asset_name: "asset/workflow/me@example.com:ndvi"
            entity { type: "user-email" id: "you@example.com" }
            access: "workflows/role/viewer"
          }
          xyz_session_logs {
            xyz_id: "xyz-a"
            records {
              session_id: "s1"
              record { level: ERROR message: "tile failed" }
            }
          }
        }
      )pb",
      "all.textproto");
  ASSERT_TRUE(scenario.ok()) << scenario.status();
  EXPECT_EQ(scenario->seed().xyzs_size(), 2);
  EXPECT_EQ(scenario->seed().access_grants_size(), 1);
  EXPECT_EQ(scenario->seed().xyz_session_logs(0).records(0).session_id(), "s1");
}

TEST(ValidateScenarioTest, BadSeedsNameTheirPositionAndProblem) {
  absl::StatusOr<Scenario> bad = ParseScenarioText(
      R"txt(seed {
  xyzs { id: "xyz-a" }
  xyzs { id: "xyz-a" }
  access_grants { asset_name: "asset/workflow/w" access: "x" }
  access_grants {
    asset_name: "asset/workflow/w"
    entity { type: "team" id: "t" }
    access: "x"
  }
  xyz_session_logs { xyz_id: "xyz-missing" }
  xyz_session_logs { records { session_id: "s" } }
}
)txt",
      "bad_seed.textproto");
  ASSERT_FALSE(bad.ok());
  const std::string message = Message(bad.status());
  EXPECT_THAT(message, HasSubstr("bad_seed.textproto:3:3: seed.xyzs[1]: id "
                                 "\"xyz-a\" is listed twice"));
  EXPECT_THAT(message,
              HasSubstr("bad_seed.textproto:4:3: seed.access_grants[0]: "
                        "entity.id is required"));
  EXPECT_THAT(message,
              HasSubstr("bad_seed.textproto:5:3: seed.access_grants[1]: "
                        "entity.type \"team\" must be \"user-email\" or "
                        "\"organization\""));
  EXPECT_THAT(message,
              HasSubstr("bad_seed.textproto:10:3: seed.xyz_session_logs[0]: "
                        "xyz_id \"xyz-missing\" is not the id of an XYZ in "
                        "seed.xyzs"));
  EXPECT_THAT(message,
              HasSubstr("bad_seed.textproto:11:3: seed.xyz_session_logs[1]: "
                        "xyz_id is required"));
  // Without positions (a Scenario built in code), the source alone.
  Scenario built;
  built.mutable_seed()->add_xyz_session_logs()->set_xyz_id("nope");
  EXPECT_THAT(Message(ValidateScenario(built, "built")),
              HasSubstr("built: seed.xyz_session_logs[0]: xyz_id \"nope\""));
}

Scenario MustParse(absl::string_view text, absl::string_view name) {
  absl::StatusOr<Scenario> scenario = ParseScenarioText(text, name);
  EXPECT_TRUE(scenario.ok()) << scenario.status();
  return scenario.ok() ? *scenario : Scenario();
}

// Several --scenario files: a later file's auth and job_progression replace
// the earlier ones wholesale (MergeFrom used to merge them field by field,
// so an earlier file's tokens and FAILED stage leaked through).
TEST(MergeScenariosTest, LaterAuthAndJobProgressionReplaceWholesale) {
  const Scenario first = MustParse(
      R"pb(
        name: "first"
        auth { valid_tokens: "a" expired_tokens: "old" include_health: true }
        job_progression {
          stage_duration { seconds: 5 }
          final_stage: FAILED
          error_code: ERROR_OOM
        }
      )pb",
      "first.textproto");
  const Scenario second =
      MustParse(R"pb(
                  name: "second"
                  auth { valid_tokens: "b" }
                  job_progression { stage_duration { nanos: 1000 } }
                )pb",
                "second.textproto");
  const Scenario merged = MergeScenarios({first, second});
  EXPECT_EQ(merged.name(), "first+second");
  EXPECT_THAT(merged.auth().valid_tokens(), ElementsAre("b"));
  EXPECT_THAT(merged.auth().expired_tokens(), IsEmpty());
  EXPECT_FALSE(merged.auth().include_health());
  EXPECT_EQ(merged.job_progression().final_stage(), Job::UNSPECIFIED);
  EXPECT_EQ(merged.job_progression().error_code(), 0);
  EXPECT_EQ(merged.job_progression().stage_duration().seconds(), 0);
  EXPECT_EQ(merged.job_progression().stage_duration().nanos(), 1000);
  EXPECT_TRUE(ValidateScenario(merged, "merged").ok());

  // A later file without them keeps the earlier ones.
  const Scenario kept = MergeScenarios({first, MustParse("name: \"x\"", "x")});
  EXPECT_THAT(kept.auth().valid_tokens(), ElementsAre("a"));
  EXPECT_EQ(kept.job_progression().final_stage(), Job::FAILED);
}

TEST(MergeScenariosTest, RulesAppendAndHealthOverridesPerService) {
  const Scenario first = MustParse(
      R"pb(
        rules { method: "GetJob" name: "early" }
        health { service: "" status: "NOT_SERVING" }
        health { service: "descarteslabs.workflows.JobAPI" status: "SERVING" }
        seed { workflows { id: "ci@example.com:w1" name: "w1" } }
        random_seed: 3
      )pb",
      "first");
  const Scenario second = MustParse(
      R"pb(
        rules { method: "GetJob" name: "late" }
        health { service: "" status: "SERVING" }
        health { service: "descarteslabs.workflows.XYZAPI" status: "UNKNOWN" }
        seed { workflows { id: "ci@example.com:w2" name: "w2" } }
      )pb",
      "second");
  const Scenario merged = MergeScenarios({first, second});
  ASSERT_EQ(merged.rules_size(), 2);
  // Later rules come later, which the script tries first.
  EXPECT_EQ(merged.rules(0).name(), "early");
  EXPECT_EQ(merged.rules(1).name(), "late");
  ASSERT_EQ(merged.health_size(), 3);
  EXPECT_EQ(merged.health(0).service(), "");
  EXPECT_EQ(merged.health(0).status(), "SERVING");
  EXPECT_EQ(merged.health(1).status(), "SERVING");
  EXPECT_EQ(merged.health(2).service(), "descarteslabs.workflows.XYZAPI");
  EXPECT_EQ(merged.seed().workflows_size(), 2);
  EXPECT_EQ(merged.random_seed(), 3);
  EXPECT_EQ(merged.name(), "");  // Both unnamed here; the binary names them.
  // A service listed by two files used to appear twice and fail validation.
  EXPECT_TRUE(ValidateScenario(merged, "merged").ok())
      << ValidateScenario(merged, "merged");
}

}  // namespace
}  // namespace fake
}  // namespace workflows
