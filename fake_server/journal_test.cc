#include "fake_server/journal.h"

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/any.pb.h"
#include "gtest/gtest.h"
#include "proto/job.pb.h"

namespace workflows {
namespace fake {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Property;
using ::testing::SizeIs;

constexpr char kGetJob[] = "/descarteslabs.workflows.JobAPI/GetJob";
constexpr char kCreateJob[] = "/descarteslabs.workflows.JobAPI/CreateJob";
constexpr char kCheck[] = "/grpc.health.v1.Health/Check";

const absl::Time kStart = absl::FromUnixSeconds(1767225600);

// Records one finished call to `method` with `status`.
void RecordCall(Journal& journal, absl::string_view method,
                const grpc::Status& status = grpc::Status::OK) {
  Journal::ActiveCall call = journal.Begin(method, kStart);
  journal.End(call, status);
}

TEST(JournalTest, MethodMatchesBareQualifiedAndFullNames) {
  EXPECT_TRUE(Journal::MethodMatches(kGetJob, "GetJob"));
  EXPECT_TRUE(Journal::MethodMatches(kGetJob, "JobAPI/GetJob"));
  EXPECT_TRUE(
      Journal::MethodMatches(kGetJob, "descarteslabs.workflows.JobAPI/GetJob"));
  EXPECT_TRUE(Journal::MethodMatches(kGetJob, kGetJob));
  EXPECT_FALSE(Journal::MethodMatches(kGetJob, "Job"));
  EXPECT_FALSE(Journal::MethodMatches(kGetJob, "PI/GetJob"));
  EXPECT_FALSE(Journal::MethodMatches(kGetJob, "workflows.JobAPI"));
  EXPECT_FALSE(Journal::MethodMatches(kGetJob, ""));
}

TEST(JournalTest, SessionQueriesSeeAndClearOnlyThatSession) {
  Journal journal;
  for (const char* session : {"a", "b", "a", ""}) {
    Journal::ActiveCall call = journal.Begin(kGetJob, kStart, session);
    journal.End(call, grpc::Status::OK);
  }
  Journal::ActiveCall running = journal.Begin(kCreateJob, kStart, "b");

  EXPECT_THAT(journal.SessionCalls("a"),
              ElementsAre(Property(&RecordedCall::session, "a"),
                          Property(&RecordedCall::session, "a")));
  EXPECT_THAT(journal.SessionCalls("", "GetJob"),
              ElementsAre(Property(&RecordedCall::sequence, 4)));
  EXPECT_THAT(journal.Calls(), SizeIs(4));
  EXPECT_EQ(journal.CountSessionCalls("a", "GetJob"), 2);
  EXPECT_EQ(journal.CountCalls("GetJob"), 4);
  EXPECT_TRUE(
      journal.WaitForSessionCalls("b", "GetJob", 1, absl::ZeroDuration()).ok());
  const absl::Status short_wait =
      journal.WaitForSessionCalls("b", "GetJob", 2, absl::ZeroDuration());
  EXPECT_EQ(short_wait.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(short_wait.message(), HasSubstr("in session \"b\""));
  EXPECT_TRUE(
      journal.WaitForSessionInFlight("b", "CreateJob", 1, absl::ZeroDuration())
          .ok());
  EXPECT_EQ(
      journal.WaitForSessionInFlight("a", "CreateJob", 1, absl::ZeroDuration())
          .code(),
      absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(journal.InFlight(),
              ElementsAre(Field(&Journal::InFlightCall::session, "b")));
  Journal::DumpOptions only_b;
  only_b.session = "b";
  EXPECT_EQ(journal.Dump(only_b).calls_size(), 1);

  journal.ClearSession("a");
  EXPECT_THAT(journal.SessionCalls("a"), IsEmpty());
  EXPECT_EQ(journal.CountSessionCalls("a", "GetJob"), 0);
  EXPECT_EQ(journal.CountCalls("GetJob"), 2);
  EXPECT_THAT(journal.Calls(), SizeIs(2));
  journal.End(running, grpc::Status::OK);
  EXPECT_EQ(journal.CountSessionCalls("b", "CreateJob"), 1);
}

TEST(JournalTest, RecordsWhatTheServerFillsIn) {
  Journal journal;
  Journal::ActiveCall call = journal.Begin(kGetJob, kStart);
  ASSERT_TRUE(call.recording());
  descarteslabs::workflows::GetJobRequest request;
  request.set_id("job-1");
  call.AddRequest(request);
  call.SetRequestMetadata({{"x-request-id", "abc"}});
  call.SetRule("flaky");
  journal.End(call, grpc::Status(grpc::StatusCode::UNAVAILABLE, "down"));

  std::vector<RecordedCall> calls = journal.Calls("GetJob");
  ASSERT_EQ(calls.size(), 1);
  EXPECT_EQ(calls[0].method(), kGetJob);
  EXPECT_EQ(calls[0].sequence(), 1);
  EXPECT_EQ(calls[0].status_code(), "UNAVAILABLE");
  EXPECT_EQ(calls[0].status_code_number(), 14);
  EXPECT_EQ(calls[0].status_message(), "down");
  EXPECT_EQ(calls[0].rule(), "flaky");
  EXPECT_EQ(calls[0].start_time().seconds(), absl::ToUnixSeconds(kStart));
  descarteslabs::workflows::GetJobRequest recorded;
  ASSERT_TRUE(calls[0].requests(0).UnpackTo(&recorded));
  EXPECT_EQ(recorded.id(), "job-1");
  // Packed lazily, exactly as Any::PackFrom would have packed it.
  google::protobuf::Any packed;
  packed.PackFrom(request);
  EXPECT_EQ(calls[0].requests(0).SerializeAsString(),
            packed.SerializeAsString());
  ASSERT_EQ(calls[0].request_metadata_size(), 1);
  EXPECT_EQ(calls[0].request_metadata(0).key(), "x-request-id");
  EXPECT_EQ(calls[0].request_metadata(0).value(), "abc");
  EXPECT_THAT(journal.Calls("CreateJob"), IsEmpty());
}

TEST(JournalTest, SensitiveValuesAreKeptRedactedEverywhere) {
  Journal journal(JournalOptions{.sensitive_headers = {"X-Api-Key"}});
  Journal::ActiveCall call = journal.Begin(kGetJob, kStart);
  call.SetRequestMetadata({{"authorization", "Bearer s3cret-t0ken"},
                           {"x-api-key", "k3y-value"},
                           {"x-wf-channel", "v0"}});
  call.SetIdentity(std::make_shared<const CallerIdentity>(),
                   /*has_bearer_token=*/true);
  journal.End(call, grpc::Status::OK);

  // sha256("s3cret-t0ken") and sha256("k3y-value"), first 8 bytes.
  EXPECT_EQ(Journal::RedactSecret("Bearer s3cret-t0ken"),
            "Bearer <redacted sha256:8a27c94b1a6d7fbf>");
  EXPECT_EQ(Journal::RedactSecret("k3y-value"),
            "<redacted sha256:d26f3d85f1beea2b>");
  std::vector<RecordedCall> calls = journal.Calls();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_THAT(
      calls[0].request_metadata(),
      ElementsAre(Property(&RecordedMetadata::value,
                           Journal::RedactSecret("Bearer s3cret-t0ken")),
                  Property(&RecordedMetadata::value,
                           Journal::RedactSecret("k3y-value")),
                  Property(&RecordedMetadata::value, "v0")));
  EXPECT_TRUE(calls[0].identity().has_bearer_token());
  for (const std::string& text :
       {journal.ToTextProto(), journal.ToTextProto({.deterministic = true}),
        journal.Dump().SerializeAsString()}) {
    EXPECT_THAT(text, Not(HasSubstr("s3cret-t0ken")));
    EXPECT_THAT(text, Not(HasSubstr("k3y-value")));
  }
}

TEST(JournalTest, EndTwiceRecordsOnce) {
  Journal journal;
  Journal::ActiveCall call = journal.Begin(kGetJob, kStart);
  journal.End(call, grpc::Status::OK);
  journal.End(call, grpc::Status::OK);
  EXPECT_EQ(journal.Calls().size(), 1);
  EXPECT_EQ(journal.CountCalls("GetJob"), 1);
}

TEST(JournalTest, InFlightListsCallsBegunButNotEnded) {
  Journal journal;
  Journal::ActiveCall hanging = journal.Begin(kGetJob, kStart);
  Journal::ActiveCall done = journal.Begin(kCreateJob, kStart);
  journal.End(done, grpc::Status::OK);
  EXPECT_THAT(journal.InFlight(),
              ElementsAre(Field(&Journal::InFlightCall::method, kGetJob)));
  journal.End(hanging, grpc::Status::CANCELLED);
  EXPECT_THAT(journal.InFlight(), IsEmpty());
}

TEST(JournalTest, DisabledJournalCountsButRetainsNothing) {
  Journal journal(JournalOptions{.enabled = false});
  Journal::ActiveCall call = journal.Begin(kGetJob, kStart);
  EXPECT_FALSE(call.recording());
  EXPECT_THAT(journal.InFlight(), testing::SizeIs(1));
  journal.End(call, grpc::Status::OK);
  EXPECT_THAT(journal.Calls(), IsEmpty());
  EXPECT_EQ(journal.CountCalls("GetJob"), 1);
  EXPECT_TRUE(journal.WaitForCalls("GetJob", 1, absl::ZeroDuration()).ok());
}

TEST(JournalTest, CapDropsOldestAndCountsThem) {
  Journal journal(JournalOptions{.max_calls = 3});
  for (int i = 0; i < 5; ++i) RecordCall(journal, kGetJob);
  std::vector<RecordedCall> calls = journal.Calls();
  ASSERT_EQ(calls.size(), 3);
  EXPECT_EQ(calls[0].sequence(), 3);
  EXPECT_EQ(calls[2].sequence(), 5);
  EXPECT_EQ(journal.dropped_calls(), 2);
  EXPECT_EQ(journal.CountCalls("GetJob"), 5);
  EXPECT_EQ(journal.Dump().dropped_calls(), 2);
}

TEST(JournalTest, ClearForgetsCallsAndCountsButKeepsInFlight) {
  Journal journal;
  RecordCall(journal, kGetJob);
  Journal::ActiveCall hanging = journal.Begin(kCreateJob, kStart);
  journal.Clear();
  EXPECT_THAT(journal.Calls(), IsEmpty());
  EXPECT_EQ(journal.CountCalls("GetJob"), 0);
  EXPECT_THAT(journal.InFlight(), testing::SizeIs(1));
  journal.End(hanging, grpc::Status::OK);
  EXPECT_EQ(journal.CountCalls("CreateJob"), 1);
}

TEST(JournalTest, WaitForCallsReturnsWhenTheNthCallEnds) {
  Journal journal;
  RecordCall(journal, kGetJob);
  absl::Notification started;
  std::thread recorder([&] {
    started.WaitForNotification();
    RecordCall(journal, kCheck);
    RecordCall(journal, kGetJob);
  });
  started.Notify();
  const absl::Time before = absl::Now();
  EXPECT_TRUE(journal.WaitForCalls("GetJob", 2, absl::Seconds(30)).ok());
  EXPECT_LT(absl::Now() - before, absl::Seconds(10));
  recorder.join();
  EXPECT_EQ(journal.CountCalls("JobAPI/GetJob"), 2);
}

TEST(JournalTest, WaitForCallsTimeoutSaysWhatWasSeen) {
  Journal journal;
  RecordCall(journal, kGetJob);
  RecordCall(journal, kCreateJob);
  RecordCall(journal, kCreateJob);
  Journal::ActiveCall hanging = journal.Begin(kCheck, kStart);
  absl::Status status =
      journal.WaitForCalls("GetJob", 3, absl::Milliseconds(20));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), HasSubstr("3 calls to GetJob"));
  EXPECT_THAT(status.message(), HasSubstr("saw 1"));
  EXPECT_THAT(status.message(),
              HasSubstr("/descarteslabs.workflows.JobAPI/CreateJob x2"));
  EXPECT_THAT(status.message(),
              HasSubstr("in flight: /grpc.health.v1.Health/Check x1"));
  journal.End(hanging, grpc::Status::OK);
}

TEST(JournalTest, WaitForInFlightSeesCallsThatHaveNotEnded) {
  Journal journal;
  std::vector<Journal::ActiveCall> calls;
  std::thread caller([&] {
    calls.push_back(journal.Begin(kGetJob, kStart));
    calls.push_back(journal.Begin(kGetJob, kStart));
  });
  EXPECT_TRUE(journal.WaitForInFlight("GetJob", 2, absl::Seconds(30)).ok());
  caller.join();
  absl::Status status =
      journal.WaitForInFlight("GetJob", 3, absl::Milliseconds(10));
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(status.message(), HasSubstr("to be in flight, saw 2"));
  for (Journal::ActiveCall& call : calls) journal.End(call, grpc::Status::OK);
}

// A typo must not wait out the timeout (it used to: an unknown name simply
// never reached n).
TEST(JournalTest, UnknownMethodIsAnErrorAtOnceListingValidNames) {
  Journal journal;
  RecordCall(journal, kGetJob);
  const absl::Time before = absl::Now();
  absl::Status waited = journal.WaitForCalls("GetJbo", 1, absl::Hours(1));
  absl::Status in_flight = journal.WaitForInFlight("GetJbo", 1, absl::Hours(1));
  EXPECT_LT(absl::Now() - before, absl::Seconds(10));
  for (const absl::Status& status : {waited, in_flight}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(),
                HasSubstr("unknown method \"GetJbo\"; did you mean "
                          "\"GetJob\"?"));
    EXPECT_THAT(status.message(), HasSubstr("valid: "));
    EXPECT_THAT(status.message(), HasSubstr("CreateJob"));
  }
  EXPECT_EQ(Journal::ValidateMethodQuery("").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Journal::ValidateMethodQuery("Job").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(JournalTest, EverySpellingTheScriptAcceptsIsValid) {
  Journal journal;
  RecordCall(journal, kGetJob);
  for (const char* name : {"GetJob", "JobAPI/GetJob",
                           "descarteslabs.workflows.JobAPI/GetJob", kGetJob}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(Journal::ValidateMethodQuery(name).ok());
    EXPECT_TRUE(journal.WaitForCalls(name, 1, absl::ZeroDuration()).ok());
    EXPECT_THAT(journal.Calls(name), SizeIs(1));
    EXPECT_EQ(journal.CountCalls(name), 1);
  }
  EXPECT_TRUE(journal.WaitForCalls("Check", 0, absl::ZeroDuration()).ok());
}

// Calls() and CountCalls() cannot return an error, and "no calls" would make
// EXPECT_THAT(journal.Calls("GetJbo"), IsEmpty()) pass, so they stop the
// test with the same message.
TEST(JournalDeathTest, CallsAndCountCallsAbortOnAnUnknownMethod) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Journal journal;
  EXPECT_DEATH(journal.Calls("GetJbo"),
               "Calls: unknown method \"GetJbo\"; did you mean \"GetJob\"");
  EXPECT_DEATH(journal.CountCalls("WatchJobs"),
               "CountCalls: unknown method \"WatchJobs\"");
}

TEST(JournalTest, TryQueriesReturnAnUnknownMethodAsAnError) {
  Journal journal;
  Journal::ActiveCall call = journal.Begin(kGetJob, kStart, "job-a");
  journal.End(call, grpc::Status::OK);

  const absl::StatusOr<std::vector<RecordedCall>> bad =
      journal.TryCalls("GetJbo");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("unknown method \"GetJbo\"; did you mean \"GetJob\""));
  EXPECT_EQ(journal.TryCountCalls("WatchJobs").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(journal.TrySessionCalls("job-a", "GetJbo").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(journal.TryCountSessionCalls("job-a", "GetJbo").status().code(),
            absl::StatusCode::kInvalidArgument);

  const absl::StatusOr<std::vector<RecordedCall>> good =
      journal.TryCalls("GetJob");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_THAT(*good, SizeIs(1));
  EXPECT_EQ(journal.TryCountCalls("JobAPI/GetJob").value_or(-1), 1);
  EXPECT_EQ(journal.TryCountCalls("CancelJob").value_or(-1), 0);
  const absl::StatusOr<std::vector<RecordedCall>> in_session =
      journal.TrySessionCalls("job-a", "GetJob");
  ASSERT_TRUE(in_session.ok()) << in_session.status();
  EXPECT_THAT(*in_session, SizeIs(1));
  EXPECT_EQ(journal.TryCountSessionCalls("job-b", "GetJob").value_or(-1), 0);
}

TEST(JournalTest, DeterministicTextProtoOmitsVolatileFields) {
  Journal journal;
  Journal::ActiveCall call = journal.Begin(kGetJob, kStart);
  descarteslabs::workflows::GetJobRequest request;
  request.set_id("job-1");
  call.AddRequest(request);
  call.SetPeer(std::make_shared<const std::string>("ipv4:127.0.0.1:41234"));
  call.SetDeadlineRemaining(absl::Seconds(5));
  call.SetRequestMetadata({{"user-agent", "grpc-c++/1.51.1"},
                           {"grpc-accept-encoding", "gzip"},
                           {"x-wf-channel", "v0"}});
  journal.End(call, grpc::Status(grpc::StatusCode::NOT_FOUND, "no job"));

  EXPECT_EQ(journal.ToTextProto({.deterministic = true}),
            R"(calls {
  sequence: 1
  method: "/descarteslabs.workflows.JobAPI/GetJob"
  requests {
    [type.googleapis.com/descarteslabs.workflows.GetJobRequest] {
      id: "job-1"
    }
  }
  request_metadata {
    key: "x-wf-channel"
    value: "v0"
  }
  status_code: "NOT_FOUND"
  status_code_number: 5
  status_message: "no job"
}
)");
  std::string full = journal.ToTextProto();
  EXPECT_THAT(full, HasSubstr("peer: \"ipv4:127.0.0.1:41234\""));
  EXPECT_THAT(full, HasSubstr("user-agent"));
  EXPECT_THAT(full, HasSubstr("start_time"));
}

// Records a call to GetJob in `session` whose request (an id of `id_bytes`)
// and "x-big" metadata value are each `value_bytes` long.
void RecordBigCall(Journal& journal, absl::string_view session,
                   size_t value_bytes) {
  Journal::ActiveCall call = journal.Begin(kGetJob, kStart, session);
  descarteslabs::workflows::GetJobRequest request;
  request.set_id(std::string(value_bytes, 'i'));
  call.AddRequest(request);
  call.SetRequestMetadata({{"x-big", std::string(value_bytes, 'm')}});
  journal.End(call, grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 std::string(value_bytes, 's')));
}

TEST(JournalTest, OversizedValuesAreKeptTruncatedWithTheirOriginalSize) {
  Journal journal(JournalOptions{.max_value_bytes = 1024});
  RecordBigCall(journal, "", 300 << 10);

  std::vector<RecordedCall> calls = journal.Calls();
  ASSERT_THAT(calls, SizeIs(1));
  const RecordedCall& call = calls[0];
  EXPECT_EQ(call.requests(0).value().size(), 1024);
  EXPECT_THAT(call.request_metadata(0).value(),
              HasSubstr("...<truncated from 307200 bytes>"));
  EXPECT_LT(call.request_metadata(0).value().size(), 1100);
  EXPECT_THAT(call.status_message(),
              HasSubstr("...<truncated from 307200 bytes>"));
  std::vector<std::string> fields;
  for (const TruncatedValue& truncated : call.truncations()) {
    fields.push_back(truncated.field());
    EXPECT_GE(truncated.original_bytes(), 300 << 10) << truncated.field();
  }
  EXPECT_THAT(fields,
              testing::UnorderedElementsAre(
                  "requests[0]", "request_metadata[x-big]", "status_message"));
}

// A stream of oversized calls: the journal's own accounting stays within
// its budget, and what it drops it counts.
TEST(JournalTest, OversizedCallsStayWithinTheByteBudget) {
  constexpr size_t kBudget = 1 << 20;
  Journal journal(JournalOptions{.max_bytes = kBudget});
  for (int i = 0; i < 60; ++i) {
    // Values past the 64 KiB limit (small enough to stay fast under TSan).
    RecordBigCall(journal, "", 256 << 10);
    EXPECT_LE(journal.retained_bytes(), kBudget) << "after call " << i;
  }
  const std::vector<RecordedCall> calls = journal.Calls();
  ASSERT_FALSE(calls.empty());
  EXPECT_EQ(calls.size() + journal.dropped_calls(), 60);
  EXPECT_EQ(calls.back().sequence(), 60);
  EXPECT_EQ(journal.CountCalls("GetJob"), 60);
  // Each kept call holds about 3 * 64 KiB, so the budget keeps several.
  EXPECT_GE(calls.size(), 4);
}

TEST(JournalTest, ASessionsFloodDoesNotEvictAnotherSessionsCalls) {
  Journal journal(JournalOptions{.max_bytes = 256 << 10});
  RecordBigCall(journal, "quiet", 100);
  RecordBigCall(journal, "quiet", 100);
  for (int i = 0; i < 500; ++i) RecordBigCall(journal, "flood", 10 << 10);
  EXPECT_THAT(journal.SessionCalls("quiet"), SizeIs(2));
  EXPECT_GT(journal.dropped_calls(), 0);
  EXPECT_LE(journal.retained_bytes(), 256 << 10);
}

TEST(JournalTest, SessionCapRefusesOneMoreSessionNamingTheLimit) {
  Journal journal(JournalOptions{.max_sessions = 2});
  RecordCall(journal, kGetJob);  // "" never counts
  for (const char* session : {"a", "b", "a"}) {
    Journal::ActiveCall call = journal.Begin(kGetJob, kStart, session);
    EXPECT_TRUE(call.admitted()) << session;
    journal.End(call, grpc::Status::OK);
  }
  Journal::ActiveCall refused = journal.Begin(kGetJob, kStart, "c");
  ASSERT_FALSE(refused.admitted());
  EXPECT_EQ(refused.refusal().error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.refusal().error_message(),
              AllOf(HasSubstr("2 sessions"),
                    HasSubstr("--journal_max_sessions"), HasSubstr("\"c\"")));
  journal.End(refused, refused.refusal());
  EXPECT_EQ(journal.refused_calls(), 1);
  EXPECT_EQ(journal.Dump().refused_calls(), 1);
  EXPECT_THAT(journal.SessionCalls("c"), IsEmpty());
  EXPECT_THAT(journal.InFlight(), IsEmpty());

  journal.ClearSession("a");  // frees a slot
  Journal::ActiveCall admitted = journal.Begin(kGetJob, kStart, "c");
  EXPECT_TRUE(admitted.admitted());
  journal.End(admitted, grpc::Status::OK);
  EXPECT_THAT(journal.SessionCalls("c"), SizeIs(1));
}

TEST(JournalTest, LongStreamsKeepTheirFirstResponsesAndCountTheRest) {
  Journal journal(JournalOptions{.max_value_bytes = 1024});
  Journal::ActiveCall call = journal.Begin(kGetJob, kStart);
  descarteslabs::workflows::Job job;
  job.set_id(std::string(1000, 'j'));
  for (int i = 0; i < 100; ++i) call.AddResponse(job);
  journal.End(call, grpc::Status::OK);
  const RecordedCall recorded = journal.Calls().at(0);
  EXPECT_EQ(recorded.responses_size(), Journal::kMaxValuesPerCall);
  ASSERT_EQ(recorded.truncations_size(), 1);
  EXPECT_EQ(recorded.truncations(0).field(), "responses[16..99] not kept");
  EXPECT_EQ(recorded.truncations(0).original_bytes(), 84 * job.ByteSizeLong());
}

// 3,000 calls of about 1 KB: more than one 1 MiB page can hold
// (tests/scenarios/journal_limits_test reads 12,000 in 4 MiB pages).
TEST(JournalTest, PagesStayUnderTheirByteLimitAndCoverEveryCallOnce) {
  constexpr int kCalls = 3000;
  Journal journal;
  for (int i = 0; i < kCalls; ++i) RecordBigCall(journal, "", 300);
  Journal::PageQuery query;
  query.max_bytes = 1 << 20;
  std::vector<uint64_t> sequences;
  int pages = 0;
  for (;;) {
    Journal::Page page = journal.ReadPage(query);
    ++pages;
    EXPECT_LT(page.dump.ByteSizeLong(), 1 << 20);
    for (const RecordedCall& call : page.dump.calls()) {
      sequences.push_back(call.sequence());
    }
    if (page.dump.more_calls() == 0) {
      EXPECT_EQ(page.next, 0);
      break;
    }
    EXPECT_EQ(page.dump.more_calls() + sequences.size(), kCalls);
    ASSERT_NE(page.next, 0);
    query.after = page.next;
    ASSERT_LT(pages, 100);
  }
  EXPECT_GE(pages, 2);
  ASSERT_EQ(sequences.size(), kCalls);
  for (size_t i = 0; i < sequences.size(); ++i) {
    ASSERT_EQ(sequences[i], i + 1);
  }

  query.after = 0;
  query.max_calls = 5;
  query.method = "CreateJob";
  EXPECT_EQ(journal.ReadPage(query).dump.calls_size(), 0);
  query.method = "GetJob";
  Journal::Page five = journal.ReadPage(query);
  EXPECT_EQ(five.dump.calls_size(), 5);
  EXPECT_EQ(five.dump.more_calls(), kCalls - 5);
}

TEST(JournalTest, ConcurrentRecordingLosesNothing) {
  Journal journal(JournalOptions{.max_calls = 1000});
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&journal] {
      for (int i = 0; i < 500; ++i) RecordCall(journal, kGetJob);
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(journal.CountCalls("GetJob"), 4000);
  EXPECT_EQ(journal.Calls().size(), 1000);
  EXPECT_EQ(journal.dropped_calls(), 3000);
  EXPECT_THAT(journal.InFlight(), IsEmpty());
}

}  // namespace
}  // namespace fake
}  // namespace workflows
