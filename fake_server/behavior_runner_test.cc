#include "fake_server/behavior_runner.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/fake_call_context.h"
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
using ::testing::Pair;

// A CallContext the test controls: MarkDone() ends the call, and `waiting`
// fires when the runner first blocks in WaitUntilDone.
class TestCall : public CallContext {
 public:
  explicit TestCall(absl::Time deadline = absl::InfiniteFuture())
      : deadline_(deadline) {}

  absl::string_view method() const override {
    return "/descarteslabs.workflows.JobAPI/GetJob";
  }
  const std::multimap<std::string, std::string>& request_metadata()
      const override {
    return metadata_;
  }
  absl::Time deadline() const override { return deadline_; }
  std::string peer() const override { return "test"; }
  bool IsDone() const override {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  bool WaitUntilDone(absl::Duration timeout) override {
    if (!waiting.HasBeenNotified()) waiting.Notify();
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
    return done_;
  }
  void AddInitialMetadata(const std::string& key,
                          const std::string& value) override {
    absl::MutexLock lock(&mu_);
    initial_.emplace_back(key, value);
  }
  void AddTrailingMetadata(const std::string& key,
                           const std::string& value) override {
    absl::MutexLock lock(&mu_);
    trailing_.emplace_back(key, value);
  }
  Clock& clock() override { return clock_; }
  void ResetCall() override {
    absl::MutexLock lock(&mu_);
    reset_ = true;
    done_ = true;
  }

  void MarkDone() {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  bool was_reset() const {
    absl::MutexLock lock(&mu_);
    return reset_;
  }
  std::vector<std::pair<std::string, std::string>> initial() const {
    absl::MutexLock lock(&mu_);
    return initial_;
  }
  std::vector<std::pair<std::string, std::string>> trailing() const {
    absl::MutexLock lock(&mu_);
    return trailing_;
  }

  absl::Notification waiting;

 private:
  const absl::Time deadline_;
  std::multimap<std::string, std::string> metadata_;
  SimulatedClock clock_;
  mutable absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool reset_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::pair<std::string, std::string>> initial_
      ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, std::string>> trailing_
      ABSL_GUARDED_BY(mu_);
};

Job::State StateAt(Job::Stage stage) {
  Job::State state;
  state.set_stage(stage);
  return state;
}

// Records what a stream wrote; `fail_after` makes the n+1-th write fail.
struct Writer {
  std::vector<Job::State> written;
  int fail_after = -1;
  std::function<bool(const google::protobuf::Message&)> Fn() {
    return [this](const google::protobuf::Message& message) {
      if (fail_after >= 0 && written.size() >= fail_after) return false;
      Job::State state;
      state.CopyFrom(message);
      written.push_back(state);
      return true;
    };
  }
};

using WriteFn = std::function<bool(const google::protobuf::Message&)>;

// A backend stream that writes QUEUED..SUCCEEDED, stopping when told.
grpc::Status FiveStates(const WriteFn& write, int* backend_writes) {
  for (Job::Stage stage : {Job::QUEUED, Job::PREPARING, Job::RUNNING,
                           Job::SAVING, Job::SUCCEEDED}) {
    ++*backend_writes;
    if (!write(StateAt(stage))) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "backend stopped");
    }
  }
  return grpc::Status::OK;
}

std::function<grpc::Status()> MustNotPassThrough() {
  return [] {
    ADD_FAILURE() << "pass_through called";
    return grpc::Status::OK;
  };
}

TEST(ParseStatusCodeTest, AcceptsNamesNumbersAndEmpty) {
  EXPECT_EQ(*ParseStatusCode("UNAVAILABLE"), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(*ParseStatusCode("unauthenticated"),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(*ParseStatusCode("8"), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(*ParseStatusCode("0"), grpc::StatusCode::OK);
  EXPECT_EQ(*ParseStatusCode(""), grpc::StatusCode::OK);
}

TEST(ParseStatusCodeTest, RejectsUnknownListingValidNames) {
  for (const char* bad : {"UNAVAILBLE", "17", "-1", "429"}) {
    auto code = ParseStatusCode(bad);
    ASSERT_FALSE(code.ok()) << bad;
    EXPECT_THAT(code.status().message(),
                HasSubstr(absl::StrCat("unknown status code \"", bad, "\"")));
    EXPECT_THAT(code.status().message(),
                HasSubstr("valid: OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT"));
  }
}

TEST(ToGrpcStatusTest, DetailsRoundTripThroughRpcStatus) {
  StatusSpec spec;
  spec.set_code("RESOURCE_EXHAUSTED");
  spec.set_message("slow down");
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(3);
  spec.add_details()->PackFrom(retry);

  grpc::Status status = ToGrpcStatus(spec);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "slow down");
  google::rpc::Status rich;
  ASSERT_TRUE(rich.ParseFromString(status.error_details()));
  EXPECT_EQ(rich.code(),
            static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
  EXPECT_EQ(rich.message(), "slow down");
  ASSERT_EQ(rich.details_size(), 1);
  google::rpc::RetryInfo parsed;
  ASSERT_TRUE(rich.details(0).UnpackTo(&parsed));
  EXPECT_EQ(parsed.retry_delay().seconds(), 3);
}

TEST(ToGrpcStatusTest, NoDetailsMeansNoDetailsBlob) {
  StatusSpec spec;
  spec.set_code("14");
  spec.set_message("down");
  grpc::Status status = ToGrpcStatus(spec);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_details(), IsEmpty());
}

TEST(ToGrpcStatusTest, InvalidCodeBecomesUnknownSayingWhy) {
  StatusSpec spec;
  spec.set_code("NOPE");
  grpc::Status status = ToGrpcStatus(spec);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNKNOWN);
  EXPECT_THAT(status.error_message(),
              HasSubstr("unknown status code \"NOPE\""));
}

TEST(RunUnaryBehaviorTest, FailSendsMetadataAndStatus) {
  Behavior behavior;
  behavior.add_initial_metadata()->set_key("x-wf-warnings");
  behavior.mutable_initial_metadata(0)->set_value("deprecated");
  MetadataEntry* trailer = behavior.add_trailing_metadata();
  trailer->set_key("grpc-retry-pushback-ms");
  trailer->set_value("250");
  behavior.mutable_fail()->set_code("UNAVAILABLE");
  behavior.mutable_fail()->set_message("try later");

  TestCall call;
  Job response;
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "try later");
  EXPECT_THAT(call.initial(), ElementsAre(Pair("x-wf-warnings", "deprecated")));
  EXPECT_THAT(call.trailing(),
              ElementsAre(Pair("grpc-retry-pushback-ms", "250")));
}

TEST(RunUnaryBehaviorTest, FailWithOkGivesEmptyResponse) {
  Behavior behavior;
  behavior.mutable_fail()->set_code("OK");
  TestCall call;
  Job response;
  response.set_id("stale");
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(response.ByteSizeLong(), 0);
}

TEST(RunUnaryBehaviorTest, ReplyUnpacksTheResponse) {
  Job job;
  job.set_id("job-1");
  Behavior behavior;
  behavior.mutable_reply()->PackFrom(job);
  TestCall call;
  Job response;
  EXPECT_TRUE(
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough()).ok());
  EXPECT_EQ(response.id(), "job-1");
}

TEST(RunUnaryBehaviorTest, ReplyOfWrongTypeIsInternalNamingBothTypes) {
  Behavior behavior;
  behavior.mutable_reply()->PackFrom(StateAt(Job::RUNNING));
  TestCall call;
  Job response;
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(),
              HasSubstr("\"descarteslabs.workflows.Job.State\""));
  EXPECT_THAT(status.error_message(),
              HasSubstr("\"descarteslabs.workflows.Job\""));
}

TEST(RunUnaryBehaviorTest, NoOutcomePassesThrough) {
  Behavior behavior;
  behavior.add_trailing_metadata()->set_key("x-scripted");
  TestCall call;
  Job response;
  int calls = 0;
  grpc::Status status = RunUnaryBehavior(behavior, &call, &response, [&] {
    ++calls;
    response.set_id("from-backend");
    return grpc::Status::OK;
  });
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(response.id(), "from-backend");
  EXPECT_THAT(call.trailing(), ElementsAre(Pair("x-scripted", "")));
}

// The server skips RunUnaryBehavior for these, so anything that would make
// RunUnaryBehavior do more than call the backend must count as scripted.
TEST(IsPlainPassThroughTest, OnlyABarePassThroughQualifies) {
  Behavior unset;
  EXPECT_TRUE(IsPlainPassThrough(unset));
  Behavior pass;
  pass.set_pass_through(true);
  EXPECT_TRUE(IsPlainPassThrough(pass));

  Behavior delayed = pass;
  delayed.mutable_delay()->set_nanos(1);
  EXPECT_FALSE(IsPlainPassThrough(delayed));
  Behavior with_initial = pass;
  with_initial.add_initial_metadata()->set_key("x-wf-warnings");
  EXPECT_FALSE(IsPlainPassThrough(with_initial));
  Behavior with_trailing;  // outcome unset, as NoOutcomePassesThrough
  with_trailing.add_trailing_metadata()->set_key("x-scripted");
  EXPECT_FALSE(IsPlainPassThrough(with_trailing));
  Behavior fail;
  fail.mutable_fail()->set_code("UNAVAILABLE");
  EXPECT_FALSE(IsPlainPassThrough(fail));
  Behavior hang;
  hang.set_hang(true);
  EXPECT_FALSE(IsPlainPassThrough(hang));
}

TEST(RunUnaryBehaviorTest, ExpireDeadlineAnswersAtOnce) {
  Behavior behavior;
  behavior.set_expire_deadline(true);
  TestCall call(absl::Now() + absl::Hours(24));
  Job response;
  const absl::Time start = absl::Now();
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(status.error_message(), HasSubstr("expire_deadline"));
  EXPECT_THAT(status.error_message(), HasSubstr("from now"));
  EXPECT_FALSE(call.waiting.HasBeenNotified());
}

TEST(RunUnaryBehaviorTest, DelayBeyondDeadlineAnswersAtOnce) {
  Behavior behavior;
  behavior.mutable_delay()->set_seconds(10);
  behavior.add_initial_metadata()->set_key("x-never-sent");
  TestCall call(absl::Now() + absl::Seconds(5));
  Job response;
  const absl::Time start = absl::Now();
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(status.error_message(), HasSubstr("delay of 10s"));
  EXPECT_FALSE(call.waiting.HasBeenNotified());
  EXPECT_THAT(call.initial(), IsEmpty());
}

TEST(RunUnaryBehaviorTest, DelayWithinDeadlineWaitsThenRunsOutcome) {
  Behavior behavior;
  behavior.mutable_delay()->set_nanos(1000000);  // 1 ms
  behavior.mutable_fail()->set_code("NOT_FOUND");
  TestCall call(absl::Now() + absl::Hours(1));
  Job response;
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(call.waiting.HasBeenNotified());
}

TEST(RunUnaryBehaviorTest, DelayEndsWhenTheCallIsCancelled) {
  Behavior behavior;
  behavior.mutable_delay()->set_seconds(3600);
  TestCall call;
  std::thread canceller([&] {
    call.waiting.WaitForNotification();
    call.MarkDone();
  });
  Job response;
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
}

TEST(RunUnaryBehaviorTest, HangEndsCancelledWhenTheCallIsDone) {
  Behavior behavior;
  behavior.set_hang(true);
  TestCall call;
  std::thread canceller([&] {
    call.waiting.WaitForNotification();
    call.MarkDone();
  });
  Job response;
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
}

TEST(RunUnaryBehaviorTest, HangEndsDeadlineExceededAfterTheDeadline) {
  Behavior behavior;
  behavior.set_hang(true);
  // The deadline has passed; the call is done once the server notices.
  TestCall call(absl::Now() - absl::Milliseconds(1));
  std::thread expirer([&] {
    call.waiting.WaitForNotification();
    call.MarkDone();
  });
  Job response;
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  expirer.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

// With the shared FakeCallContext, whose deadline really passes: a hang with
// a 50 ms deadline ends DEADLINE_EXCEEDED once it does.
TEST(RunUnaryBehaviorTest, HangEndsAtARealShortDeadline) {
  Behavior behavior;
  behavior.set_hang(true);
  FakeCallContext call;
  const absl::Time deadline = absl::Now() + absl::Milliseconds(50);
  call.set_deadline(deadline);
  Job response;
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_GE(absl::Now(), deadline);
}

TEST(RunUnaryBehaviorTest, HangEndsWhenTheSharedFakeIsCancelled) {
  Behavior behavior;
  behavior.set_hang(true);
  FakeCallContext call;
  std::thread canceller([&] { call.Cancel(); });
  Job response;
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
}

TEST(RunUnaryBehaviorTest, StreamOutcomeOnUnaryIsInternal) {
  Behavior behavior;
  behavior.mutable_stream();
  TestCall call;
  Job response;
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(), HasSubstr("unary method"));
}

class RunStreamBehaviorTest : public ::testing::Test {
 protected:
  grpc::Status Run(const Behavior& behavior, TestCall* call) {
    return RunStreamBehavior(behavior, call, Job::State::default_instance(),
                             writer_.Fn(), [this](const WriteFn& write) {
                               ++pass_throughs_;
                               return FiveStates(write, &backend_writes_);
                             });
  }

  Writer writer_;
  int pass_throughs_ = 0;
  int backend_writes_ = 0;
};

TEST_F(RunStreamBehaviorTest, SendsKMessagesThenFailsWithTrailers) {
  Behavior behavior;
  StreamScript* stream = behavior.mutable_stream();
  stream->add_messages()->PackFrom(StateAt(Job::QUEUED));
  stream->add_messages()->PackFrom(StateAt(Job::RUNNING));
  stream->mutable_status()->set_code("UNAVAILABLE");
  stream->mutable_status()->set_message("connection reset");
  MetadataEntry* trailer = behavior.add_trailing_metadata();
  trailer->set_key("retry-after");
  trailer->set_value("2");

  TestCall call;
  grpc::Status status = Run(behavior, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "connection reset");
  ASSERT_EQ(writer_.written.size(), 2);
  EXPECT_EQ(writer_.written[0].stage(), Job::QUEUED);
  EXPECT_EQ(writer_.written[1].stage(), Job::RUNNING);
  EXPECT_THAT(call.trailing(), ElementsAre(Pair("retry-after", "2")));
  EXPECT_EQ(pass_throughs_, 0);
}

TEST_F(RunStreamBehaviorTest, ZeroMessagesEndsOk) {
  Behavior behavior;
  behavior.mutable_stream();
  TestCall call;
  EXPECT_TRUE(Run(behavior, &call).ok());
  EXPECT_THAT(writer_.written, IsEmpty());
  EXPECT_EQ(pass_throughs_, 0);
}

TEST_F(RunStreamBehaviorTest, EndsOkEarlyBeforeATerminalState) {
  Behavior behavior;
  behavior.mutable_stream()->add_messages()->PackFrom(StateAt(Job::RUNNING));
  TestCall call;
  EXPECT_TRUE(Run(behavior, &call).ok());
  ASSERT_EQ(writer_.written.size(), 1);
  EXPECT_EQ(writer_.written[0].stage(), Job::RUNNING);
}

TEST_F(RunStreamBehaviorTest, WriteFailureEndsTheStream) {
  Behavior behavior;
  for (int i = 0; i < 3; ++i) {
    behavior.mutable_stream()->add_messages()->PackFrom(StateAt(Job::QUEUED));
  }
  writer_.fail_after = 1;
  TestCall call;
  grpc::Status status = Run(behavior, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(writer_.written.size(), 1);
}

TEST_F(RunStreamBehaviorTest, MessageOfWrongTypeIsInternal) {
  Behavior behavior;
  behavior.mutable_stream()->add_messages()->PackFrom(Job());
  TestCall call;
  grpc::Status status = Run(behavior, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(writer_.written, IsEmpty());
}

TEST_F(RunStreamBehaviorTest, PassThroughBreaksAfterNMessages) {
  Behavior behavior;
  behavior.mutable_stream()->set_pass_through_messages(2);
  behavior.mutable_stream()->mutable_status()->set_code("UNAVAILABLE");
  TestCall call;
  grpc::Status status = Run(behavior, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_EQ(writer_.written.size(), 2);
  EXPECT_EQ(writer_.written[0].stage(), Job::QUEUED);
  EXPECT_EQ(writer_.written[1].stage(), Job::PREPARING);
  EXPECT_EQ(pass_throughs_, 1);
  EXPECT_EQ(backend_writes_, 2);  // The backend was stopped at the break.
}

TEST_F(RunStreamBehaviorTest, PassThroughEndingBeforeTheBreakKeepsItsStatus) {
  Behavior behavior;
  behavior.mutable_stream()->set_pass_through_messages(10);
  behavior.mutable_stream()->mutable_status()->set_code("UNAVAILABLE");
  TestCall call;
  EXPECT_TRUE(Run(behavior, &call).ok());
  EXPECT_EQ(writer_.written.size(), 5);
}

TEST_F(RunStreamBehaviorTest, PassThroughIsTheDefault) {
  Behavior behavior;
  behavior.add_initial_metadata()->set_key("x-wf-warnings");
  TestCall call;
  EXPECT_TRUE(Run(behavior, &call).ok());
  EXPECT_EQ(writer_.written.size(), 5);
  EXPECT_THAT(call.initial(), ElementsAre(Pair("x-wf-warnings", "")));
}

TEST_F(RunStreamBehaviorTest, DelayPerMessageEndsWhenTheCallIsDone) {
  Behavior behavior;
  behavior.mutable_stream()->mutable_delay_per_message()->set_seconds(3600);
  behavior.mutable_stream()->add_messages()->PackFrom(StateAt(Job::QUEUED));
  TestCall call;
  std::thread canceller([&] {
    call.waiting.WaitForNotification();
    call.MarkDone();
  });
  grpc::Status status = Run(behavior, &call);
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_THAT(writer_.written, IsEmpty());
}

TEST_F(RunStreamBehaviorTest, DelayPerMessageBeyondDeadlineAnswersAtOnce) {
  Behavior behavior;
  behavior.mutable_stream()->mutable_delay_per_message()->set_seconds(60);
  behavior.mutable_stream()->add_messages()->PackFrom(StateAt(Job::QUEUED));
  TestCall call(absl::Now() + absl::Seconds(5));
  grpc::Status status = Run(behavior, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_FALSE(call.waiting.HasBeenNotified());
}

TEST_F(RunStreamBehaviorTest, FailAndExpireWorkOnStreams) {
  Behavior fail;
  fail.mutable_fail()->set_code("PERMISSION_DENIED");
  TestCall call;
  EXPECT_EQ(Run(fail, &call).error_code(), grpc::StatusCode::PERMISSION_DENIED);

  Behavior expire;
  expire.set_expire_deadline(true);
  EXPECT_EQ(Run(expire, &call).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(writer_.written, IsEmpty());
  EXPECT_EQ(pass_throughs_, 0);
}

TEST_F(RunStreamBehaviorTest, ReplyOnStreamIsInternal) {
  Behavior behavior;
  behavior.mutable_reply()->PackFrom(StateAt(Job::QUEUED));
  TestCall call;
  grpc::Status status = Run(behavior, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(), HasSubstr("use `stream`"));
}

TEST(RunUnaryBehaviorTest, ResetCancelsTheCallFromTheServer) {
  Behavior behavior;
  behavior.set_reset(true);
  TestCall call;
  Job response;
  response.set_id("stale");
  grpc::Status status =
      RunUnaryBehavior(behavior, &call, &response, MustNotPassThrough());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_THAT(status.error_message(), HasSubstr("scripted reset"));
  EXPECT_TRUE(call.was_reset());
  EXPECT_EQ(response.id(), "");
}

// The audited bug: a per-message delay on an uncut pass-through stream.
TEST_F(RunStreamBehaviorTest, UncutPassThroughWithDelayPerMessage) {
  Behavior behavior;
  behavior.mutable_stream()->set_pass_through(true);
  behavior.mutable_stream()->mutable_delay_per_message()->set_nanos(1000);
  TestCall call;
  EXPECT_TRUE(Run(behavior, &call).ok());
  EXPECT_EQ(pass_throughs_, 1);
  EXPECT_EQ(writer_.written.size(), 5);         // Every backend message, uncut.
  EXPECT_TRUE(call.waiting.HasBeenNotified());  // The delay was waited.
}

TEST_F(RunStreamBehaviorTest, PassThroughDelayBeyondDeadlineAnswersAtOnce) {
  Behavior behavior;
  behavior.mutable_stream()->set_pass_through(true);
  behavior.mutable_stream()->mutable_delay_per_message()->set_seconds(60);
  TestCall call(absl::Now() + absl::Seconds(5));
  grpc::Status status = Run(behavior, &call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(writer_.written, IsEmpty());
  EXPECT_EQ(backend_writes_, 1);  // Stopped at the first message.
}

TEST_F(RunStreamBehaviorTest, ThenHangKeepsTheStreamOpenAfterKMessages) {
  Behavior behavior;
  behavior.mutable_stream()->add_messages()->PackFrom(StateAt(Job::QUEUED));
  behavior.mutable_stream()->add_messages()->PackFrom(StateAt(Job::RUNNING));
  behavior.mutable_stream()->set_then_hang(true);
  TestCall call;
  std::thread canceller([&] {
    // The runner blocks only once both messages are out (no delays).
    call.waiting.WaitForNotification();
    call.MarkDone();
  });
  grpc::Status status = Run(behavior, &call);
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_THAT(status.error_message(), HasSubstr("hanging"));
  EXPECT_EQ(writer_.written.size(), 2);
  EXPECT_FALSE(call.was_reset());
}

TEST_F(RunStreamBehaviorTest, ThenHangAfterPassThroughCut) {
  Behavior behavior;
  behavior.mutable_stream()->set_pass_through_messages(2);
  behavior.mutable_stream()->set_then_hang(true);
  TestCall call;
  std::thread canceller([&] {
    call.waiting.WaitForNotification();
    call.MarkDone();
  });
  grpc::Status status = Run(behavior, &call);
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(writer_.written.size(), 2);
  EXPECT_EQ(backend_writes_, 2);
}

TEST_F(RunStreamBehaviorTest, ThenResetAfterScriptedAndPassedThroughMessages) {
  Behavior scripted;
  scripted.mutable_stream()->add_messages()->PackFrom(StateAt(Job::QUEUED));
  scripted.mutable_stream()->set_then_reset(true);
  TestCall first;
  grpc::Status status = Run(scripted, &first);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_THAT(status.error_message(), HasSubstr("scripted then_reset"));
  EXPECT_TRUE(first.was_reset());
  EXPECT_EQ(writer_.written.size(), 1);

  Behavior passed;
  passed.mutable_stream()->set_pass_through_messages(3);
  passed.mutable_stream()->set_then_reset(true);
  TestCall second;
  EXPECT_EQ(Run(passed, &second).error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(second.was_reset());
  EXPECT_EQ(writer_.written.size(), 4);
  EXPECT_EQ(backend_writes_, 3);
}

TEST_F(RunStreamBehaviorTest, ResetOutcomeOnStreamSendsNothing) {
  Behavior behavior;
  behavior.set_reset(true);
  TestCall call;
  EXPECT_EQ(Run(behavior, &call).error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(call.was_reset());
  EXPECT_THAT(writer_.written, IsEmpty());
  EXPECT_EQ(pass_throughs_, 0);
}

}  // namespace
}  // namespace fake
}  // namespace workflows
