#include "fake_server/in_memory_backend.h"

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/clock.h"
#include "fake_server/fake_call_context.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace fake {
namespace {

namespace wf = ::descarteslabs::workflows;
namespace discover = ::descarteslabs::discover::v0alpha;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Optional;
using ::testing::SizeIs;

// Only reached when a test fails; passing tests never wait this long.
constexpr absl::Duration kWait = absl::Seconds(20);

MATCHER_P2(StatusIs, code, substring, "") {
  *result_listener << "status " << arg.error_code() << " \""
                   << arg.error_message() << "\"";
  return arg.error_code() == code &&
         arg.error_message().find(substring) != std::string::npos;
}

MATCHER(IsOk, "") {
  *result_listener << "status " << arg.error_code() << " \""
                   << arg.error_message() << "\"";
  return arg.ok();
}

// Runs a blocking backend call (a stream) on its own thread. On destruction
// it cancels `call` before joining, so a failed assertion ends the test
// instead of hanging it.
class BackgroundCall {
 public:
  BackgroundCall(FakeCallContext* call, std::function<grpc::Status()> body)
      : call_(call), thread_([this, body = std::move(body)] {
          status_ = body();
          done_.Notify();
        }) {}
  ~BackgroundCall() {
    call_->Cancel();
    thread_.join();
  }

  bool WaitDone(absl::Duration timeout = kWait) {
    return done_.WaitForNotificationWithTimeout(timeout);
  }
  bool done() const { return done_.HasBeenNotified(); }
  // Only after WaitDone() returned true.
  const grpc::Status& status() const { return status_; }

 private:
  FakeCallContext* const call_;
  grpc::Status status_;
  absl::Notification done_;
  std::thread thread_;
};

std::vector<wf::Job::Stage> Stages(const std::vector<wf::Job::State>& states) {
  std::vector<wf::Job::Stage> stages;
  for (const wf::Job::State& state : states) stages.push_back(state.stage());
  return stages;
}

class InMemoryBackendTest : public ::testing::Test {
 protected:
  static InMemoryBackend::Options MakeOptions(
      std::shared_ptr<SimulatedClock> clock) {
    InMemoryBackend::Options options;
    options.clock = std::move(clock);
    return options;
  }

  wf::Workflow Upsert(const std::string& id,
                      std::vector<std::string> tags = {}) {
    wf::UpsertWorkflowRequest request;
    request.set_id(id);
    for (const std::string& tag : tags) request.add_tags(tag);
    wf::VersionedGraft* graft = request.add_versioned_grafts();
    graft->set_version("1.0.0");
    graft->set_serialized_graft("{\"x\": 1}");
    wf::Workflow workflow;
    EXPECT_THAT(backend_.UpsertWorkflow(&call_, request, &workflow), IsOk());
    return workflow;
  }

  wf::Job CreateJob() {
    wf::CreateJobRequest request;
    request.set_serialized_graft("{\"graft\": 1}");
    wf::Job job;
    EXPECT_THAT(backend_.CreateJob(&call_, request, &job), IsOk());
    return job;
  }

  wf::XYZ CreateXYZ(bool is_public, FakeCallContext* call = nullptr) {
    wf::CreateXYZRequest request;
    request.set_serialized_graft("{\"xyz\": 1}");
    request.set_public_(is_public);
    wf::XYZ xyz;
    EXPECT_THAT(backend_.CreateXYZ(call ? call : &call_, request, &xyz),
                IsOk());
    return xyz;
  }

  std::shared_ptr<SimulatedClock> clock_ = std::make_shared<SimulatedClock>();
  InMemoryBackend backend_{MakeOptions(clock_)};
  FakeCallContext call_{clock_};
};

// --- Workflows ---

TEST_F(InMemoryBackendTest, UpsertCreatesWorkflowFromId) {
  const int64_t now = absl::ToUnixMillis(clock_->Now());
  wf::Workflow workflow = Upsert("alice@example.com:ndvi", {"veg"});
  EXPECT_EQ(workflow.id(), "alice@example.com:ndvi");
  EXPECT_EQ(workflow.email(), "alice@example.com");
  EXPECT_EQ(workflow.name(), "ndvi");
  EXPECT_EQ(workflow.user(), "user-1");
  EXPECT_EQ(workflow.org(), "org-1");
  EXPECT_EQ(workflow.created_timestamp(), now);
  EXPECT_EQ(workflow.updated_timestamp(), now);
  EXPECT_THAT(workflow.tags(), ElementsAre("veg"));
  ASSERT_THAT(workflow.versioned_grafts(), SizeIs(1));
  EXPECT_EQ(workflow.versioned_grafts(0).created_timestamp(), now);
  EXPECT_THAT(workflow.versioned_grafts(0).url_template(),
              HasSubstr("/1.0.0/{z}/{x}/{y}.png"));
  EXPECT_THAT(workflow.wmts_url_template(), HasSubstr("WMTSCapabilities"));

  wf::GetWorkflowRequest get;
  get.set_id("alice@example.com:ndvi");
  wf::Workflow fetched;
  ASSERT_THAT(backend_.GetWorkflow(&call_, get, &fetched), IsOk());
  EXPECT_EQ(fetched.DebugString(), workflow.DebugString());
}

TEST_F(InMemoryBackendTest, UpsertMergesVersionsAndKeepsCreationTime) {
  const int64_t created = absl::ToUnixMillis(clock_->Now());
  Upsert("a@x.com:wf");
  clock_->AdvanceBy(absl::Seconds(5));
  const int64_t later = absl::ToUnixMillis(clock_->Now());

  wf::UpsertWorkflowRequest request;
  request.set_id("a@x.com:wf");
  request.set_title("Second");
  wf::VersionedGraft* updated = request.add_versioned_grafts();
  updated->set_version("1.0.0");
  updated->set_serialized_graft("{\"x\": 2}");
  wf::VersionedGraft* added = request.add_versioned_grafts();
  added->set_version("2.0.0");
  added->set_serialized_graft("{\"y\": 1}");
  wf::Workflow workflow;
  ASSERT_THAT(backend_.UpsertWorkflow(&call_, request, &workflow), IsOk());

  EXPECT_EQ(workflow.created_timestamp(), created);
  EXPECT_EQ(workflow.updated_timestamp(), later);
  EXPECT_EQ(workflow.title(), "Second");
  ASSERT_THAT(workflow.versioned_grafts(), SizeIs(2));
  EXPECT_EQ(workflow.versioned_grafts(0).serialized_graft(), "{\"x\": 2}");
  EXPECT_EQ(workflow.versioned_grafts(0).created_timestamp(), created);
  EXPECT_EQ(workflow.versioned_grafts(0).updated_timestamp(), later);
  EXPECT_EQ(workflow.versioned_grafts(1).created_timestamp(), later);

  wf::GetVersionRequest get;
  get.set_id("a@x.com:wf");
  get.set_version("2.0.0");
  wf::VersionedGraft version;
  ASSERT_THAT(backend_.GetVersion(&call_, get, &version), IsOk());
  EXPECT_EQ(version.serialized_graft(), "{\"y\": 1}");
}

TEST_F(InMemoryBackendTest, UpsertValidationNamesTheField) {
  wf::UpsertWorkflowRequest request;
  wf::Workflow workflow;
  EXPECT_THAT(backend_.UpsertWorkflow(&call_, request, &workflow),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "id is required"));

  request.set_id("no-colon");
  EXPECT_THAT(backend_.UpsertWorkflow(&call_, request, &workflow),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "\"email:name\""));
  request.set_id("a@x.com:");
  EXPECT_THAT(backend_.UpsertWorkflow(&call_, request, &workflow),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "\"a@x.com:\""));

  request.set_id("a@x.com:wf");
  wf::VersionedGraft* good = request.add_versioned_grafts();
  good->set_version("1.0.0");
  good->set_serialized_graft("{}");
  request.add_versioned_grafts()->set_version("2.0.0");
  EXPECT_THAT(backend_.UpsertWorkflow(&call_, request, &workflow),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                       "versioned_grafts[1].serialized_graft"));
  request.mutable_versioned_grafts(1)->set_serialized_graft("{}");
  request.mutable_versioned_grafts(1)->set_version("1.0.0");
  EXPECT_THAT(backend_.UpsertWorkflow(&call_, request, &workflow),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                       "versioned_grafts[1].version \"1.0.0\""));
  EXPECT_EQ(backend_.FindWorkflow("a@x.com:wf"), std::nullopt);
}

TEST_F(InMemoryBackendTest, DryRunValidatesWithoutStoring) {
  wf::UpsertWorkflowRequest request;
  request.set_id("a@x.com:wf");
  request.set_dry_run(true);
  wf::Workflow workflow;
  ASSERT_THAT(backend_.UpsertWorkflow(&call_, request, &workflow), IsOk());
  EXPECT_EQ(workflow.name(), "wf");
  EXPECT_EQ(backend_.FindWorkflow("a@x.com:wf"), std::nullopt);
}

TEST_F(InMemoryBackendTest, UnknownWorkflowAndVersionAreNotFound) {
  wf::GetWorkflowRequest get;
  get.set_id("a@x.com:missing");
  wf::Workflow workflow;
  EXPECT_THAT(backend_.GetWorkflow(&call_, get, &workflow),
              StatusIs(grpc::StatusCode::NOT_FOUND, "a@x.com:missing"));

  Upsert("a@x.com:wf");
  wf::GetVersionRequest version_request;
  version_request.set_id("a@x.com:wf");
  version_request.set_version("9.9.9");
  wf::VersionedGraft version;
  EXPECT_THAT(backend_.GetVersion(&call_, version_request, &version),
              StatusIs(grpc::StatusCode::NOT_FOUND, "no version \"9.9.9\""));
  version_request.set_id("a@x.com:other");
  EXPECT_THAT(backend_.GetVersion(&call_, version_request, &version),
              StatusIs(grpc::StatusCode::NOT_FOUND, "a@x.com:other"));
}

TEST_F(InMemoryBackendTest, SearchFiltersAreAndedInIdOrder) {
  Upsert("b@x.com:ndvi-2", {"veg", "daily"});
  Upsert("a@x.com:ndvi-1", {"veg"});
  Upsert("a@x.com:ndwi", {"water"});
  Upsert("a@x.com:ndvi-3", {"daily"});

  const auto search = [&](const std::string& email, const std::string& prefix,
                          std::vector<std::string> tags) {
    wf::SearchWorkflowsRequest request;
    request.set_email(email);
    request.set_name_prefix(prefix);
    for (const std::string& tag : tags) request.add_tags(tag);
    FakeServerStream<wf::Workflow> stream;
    EXPECT_THAT(backend_.SearchWorkflows(&call_, request, &stream), IsOk());
    std::vector<std::string> ids;
    for (const wf::Workflow& w : stream.messages()) ids.push_back(w.id());
    return ids;
  };
  EXPECT_THAT(search("", "", {}),
              ElementsAre("a@x.com:ndvi-1", "a@x.com:ndvi-3", "a@x.com:ndwi",
                          "b@x.com:ndvi-2"));
  EXPECT_THAT(search("a@x.com", "", {}),
              ElementsAre("a@x.com:ndvi-1", "a@x.com:ndvi-3", "a@x.com:ndwi"));
  EXPECT_THAT(
      search("", "ndvi", {}),
      ElementsAre("a@x.com:ndvi-1", "a@x.com:ndvi-3", "b@x.com:ndvi-2"));
  EXPECT_THAT(search("", "", {"water", "daily"}),
              ElementsAre("a@x.com:ndvi-3", "a@x.com:ndwi", "b@x.com:ndvi-2"));
  EXPECT_THAT(search("a@x.com", "ndvi", {"veg"}),
              ElementsAre("a@x.com:ndvi-1"));
  EXPECT_THAT(search("c@x.com", "", {}), IsEmpty());
}

TEST_F(InMemoryBackendTest, DeleteWorkflow) {
  Upsert("a@x.com:wf");
  wf::DeleteWorkflowRequest request;
  request.set_id("a@x.com:wf");
  wf::Empty empty;
  EXPECT_THAT(backend_.DeleteWorkflow(&call_, request, &empty), IsOk());
  EXPECT_EQ(backend_.FindWorkflow("a@x.com:wf"), std::nullopt);
  EXPECT_THAT(backend_.DeleteWorkflow(&call_, request, &empty),
              StatusIs(grpc::StatusCode::NOT_FOUND, "a@x.com:wf"));
}

TEST_F(InMemoryBackendTest, WmtsUrlTemplateIsAUrl) {
  wf::WmtsUrlTemplateResponse response;
  ASSERT_THAT(backend_.GetWmtsUrlTemplate(&call_, wf::Empty(), &response),
              IsOk());
  EXPECT_THAT(response.wmts_url_template(), HasSubstr("https://"));
  EXPECT_THAT(response.wmts_url_template(), HasSubstr("WMTSCapabilities.xml"));
}

TEST_F(InMemoryBackendTest, PutWorkflowSeedsAndValidatesId) {
  wf::Workflow workflow;
  workflow.set_id("seed@x.com:seeded");
  ASSERT_TRUE(backend_.PutWorkflow(workflow).ok());
  EXPECT_THAT(backend_.FindWorkflow("seed@x.com:seeded"),
              Optional(::testing::Property(&wf::Workflow::name, "seeded")));
  workflow.set_id("bad");
  EXPECT_EQ(backend_.PutWorkflow(workflow).code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Jobs ---

TEST_F(InMemoryBackendTest, CreateJobStartsQueuedWithCallerIdentity) {
  FakeCallContext call(clock_);
  call.AddRequestMetadata("x-on-behalf-of-user", "bob@example.com");
  wf::CreateJobRequest request;
  request.set_serialized_graft("{\"g\": 1}");
  request.set_channel("v0-19");
  request.set_client_version("1.12.1");
  (*request.mutable_arguments())["x"] = "1";
  request.set_no_cache(true);
  request.set_type(wf::Image);
  wf::Job job;
  ASSERT_THAT(backend_.CreateJob(&call, request, &job), IsOk());
  EXPECT_FALSE(job.id().empty());
  EXPECT_EQ(job.state().stage(), wf::Job::QUEUED);
  EXPECT_EQ(job.timestamp(), absl::ToUnixMillis(clock_->Now()));
  EXPECT_EQ(job.state().timestamp(), job.timestamp());
  EXPECT_EQ(job.user(), "bob@example.com");
  EXPECT_EQ(job.org(), "org-1");
  EXPECT_EQ(job.serialized_graft(), "{\"g\": 1}");
  EXPECT_EQ(job.channel(), "v0-19");
  EXPECT_EQ(job.client_version(), "1.12.1");
  EXPECT_EQ(job.arguments().at("x"), "1");
  EXPECT_TRUE(job.no_cache());
  EXPECT_EQ(job.type(), wf::Image);
  EXPECT_GT(job.expires_timestamp().seconds(),
            absl::ToUnixSeconds(clock_->Now()));
  EXPECT_NE(CreateJob().id(), job.id());
}

TEST_F(InMemoryBackendTest, CreateJobWithoutGraftNamesTheField) {
  wf::Job job;
  EXPECT_THAT(backend_.CreateJob(&call_, wf::CreateJobRequest(), &job),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "serialized_graft"));
  EXPECT_THAT(backend_.JobIds(), IsEmpty());
}

TEST_F(InMemoryBackendTest, JobProgressesWithTheClock) {
  const std::string id = CreateJob().id();
  wf::GetJobRequest get;
  get.set_id(id);
  const std::vector<wf::Job::Stage> expected = {
      wf::Job::QUEUED, wf::Job::PREPARING, wf::Job::RUNNING,
      wf::Job::SAVING, wf::Job::SUCCEEDED, wf::Job::SUCCEEDED};
  for (wf::Job::Stage stage : expected) {
    wf::Job job;
    ASSERT_THAT(backend_.GetJob(&call_, get, &job), IsOk());
    EXPECT_EQ(job.state().stage(), stage);
    clock_->AdvanceBy(absl::Seconds(1));
  }
}

TEST_F(InMemoryBackendTest, WatchJobStreamsEachStageAsTheClockAdvances) {
  const std::string id = CreateJob().id();
  FakeCallContext call(clock_);
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(id);
  BackgroundCall watch(
      &call, [&] { return backend_.WatchJob(&call, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  for (size_t seen = 2; seen <= 5; ++seen) {
    clock_->AdvanceBy(absl::Seconds(1));
    ASSERT_TRUE(stream.WaitForCount(seen, kWait)) << "stage " << seen;
  }
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_THAT(watch.status(), IsOk());
  const std::vector<wf::Job::State> states = stream.messages();
  EXPECT_THAT(Stages(states),
              ElementsAre(wf::Job::QUEUED, wf::Job::PREPARING, wf::Job::RUNNING,
                          wf::Job::SAVING, wf::Job::SUCCEEDED));
  EXPECT_EQ(states[4].timestamp(), states[0].timestamp() + 4000);
  EXPECT_EQ(states[4].tasks_progress().finished().value(), 4u);
}

TEST_F(InMemoryBackendTest, WatchJobSendsEveryStageEvenWhenTimeJumps) {
  const std::string id = CreateJob().id();
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(id);
  BackgroundCall watch(
      &call_, [&] { return backend_.WatchJob(&call_, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  clock_->AdvanceBy(absl::Minutes(1));
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_THAT(watch.status(), IsOk());
  EXPECT_THAT(Stages(stream.messages()),
              ElementsAre(wf::Job::QUEUED, wf::Job::PREPARING, wf::Job::RUNNING,
                          wf::Job::SAVING, wf::Job::SUCCEEDED));
}

TEST_F(InMemoryBackendTest, WatchJobStartsWithTheCurrentState) {
  const std::string id = CreateJob().id();
  clock_->AdvanceBy(absl::Milliseconds(2500));
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(id);
  BackgroundCall watch(
      &call_, [&] { return backend_.WatchJob(&call_, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  EXPECT_EQ(stream.messages()[0].stage(), wf::Job::RUNNING);
  clock_->AdvanceBy(absl::Seconds(2));
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_THAT(
      Stages(stream.messages()),
      ElementsAre(wf::Job::RUNNING, wf::Job::SAVING, wf::Job::SUCCEEDED));
}

TEST_F(InMemoryBackendTest, CancelJobIsSeenByWatchers) {
  const std::string id = CreateJob().id();
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(id);
  BackgroundCall watch(
      &call_, [&] { return backend_.WatchJob(&call_, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));

  wf::CancelJobRequest cancel;
  cancel.set_id(id);
  wf::CancelJobResponse response;
  ASSERT_THAT(backend_.CancelJob(&call_, cancel, &response), IsOk());
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_THAT(watch.status(), IsOk());
  EXPECT_THAT(Stages(stream.messages()),
              ElementsAre(wf::Job::QUEUED, wf::Job::CANCELLED));
  EXPECT_THAT(backend_.GetJobState(id),
              Optional(::testing::Property(&wf::Job::State::stage,
                                           wf::Job::CANCELLED)));
  // Time no longer moves a cancelled job, and it cannot be cancelled twice.
  clock_->AdvanceBy(absl::Minutes(1));
  EXPECT_EQ(backend_.GetJobState(id)->stage(), wf::Job::CANCELLED);
  EXPECT_THAT(backend_.CancelJob(&call_, cancel, &response),
              StatusIs(grpc::StatusCode::FAILED_PRECONDITION, "CANCELLED"));
}

TEST_F(InMemoryBackendTest, CancelFinishedOrUnknownJobFails) {
  const std::string id = CreateJob().id();
  clock_->AdvanceBy(absl::Minutes(1));
  wf::CancelJobRequest cancel;
  cancel.set_id(id);
  wf::CancelJobResponse response;
  EXPECT_THAT(backend_.CancelJob(&call_, cancel, &response),
              StatusIs(grpc::StatusCode::FAILED_PRECONDITION, "SUCCEEDED"));
  cancel.set_id("job-nope");
  EXPECT_THAT(backend_.CancelJob(&call_, cancel, &response),
              StatusIs(grpc::StatusCode::NOT_FOUND, "job-nope"));
}

TEST_F(InMemoryBackendTest, NextJobProgressionFailsWithOom) {
  backend_.SetNextJobProgression(
      JobProgression::FailIn(wf::Job::RUNNING, wf::ERROR_OOM, "out of memory"));
  const std::string failing = CreateJob().id();
  const std::string normal = CreateJob().id();
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(failing);
  BackgroundCall watch(
      &call_, [&] { return backend_.WatchJob(&call_, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  clock_->AdvanceBy(absl::Seconds(10));
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_THAT(watch.status(), IsOk());
  const std::vector<wf::Job::State> states = stream.messages();
  EXPECT_THAT(Stages(states), ElementsAre(wf::Job::QUEUED, wf::Job::PREPARING,
                                          wf::Job::RUNNING, wf::Job::FAILED));
  EXPECT_EQ(states.back().error().code(), wf::ERROR_OOM);
  EXPECT_EQ(states.back().error().message(), "out of memory");
  EXPECT_EQ(backend_.GetJobState(normal)->stage(), wf::Job::SUCCEEDED);
}

TEST_F(InMemoryBackendTest, DefaultAndPerJobProgressions) {
  backend_.SetDefaultJobProgression(JobProgression::Manual());
  const std::string a = CreateJob().id();
  const std::string b = CreateJob().id();
  clock_->AdvanceBy(absl::Hours(1));
  EXPECT_EQ(backend_.GetJobState(a)->stage(), wf::Job::QUEUED);

  ASSERT_TRUE(backend_
                  .SetJobProgression(
                      b, JobProgression::FailIn(wf::Job::QUEUED,
                                                wf::ERROR_TERMINATED, "killed"))
                  .ok());
  clock_->AdvanceBy(absl::Seconds(1));
  EXPECT_EQ(backend_.GetJobState(b)->stage(), wf::Job::FAILED);
  EXPECT_EQ(backend_.GetJobState(b)->error().code(), wf::ERROR_TERMINATED);
  EXPECT_EQ(backend_.SetJobProgression("job-nope", JobProgression()).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(InMemoryBackendTest, AdvanceJobStepsOnDemand) {
  backend_.SetNextJobProgression(JobProgression::Manual());
  const std::string id = CreateJob().id();
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(id);
  BackgroundCall watch(
      &call_, [&] { return backend_.WatchJob(&call_, request, &stream); });
  for (size_t seen = 1; seen < 5; ++seen) {
    ASSERT_TRUE(stream.WaitForCount(seen, kWait));
    ASSERT_TRUE(backend_.AdvanceJob(id).ok());
  }
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_THAT(Stages(stream.messages()),
              ElementsAre(wf::Job::QUEUED, wf::Job::PREPARING, wf::Job::RUNNING,
                          wf::Job::SAVING, wf::Job::SUCCEEDED));
  EXPECT_EQ(backend_.AdvanceJob(id).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(backend_.AdvanceJob("job-nope").code(),
            absl::StatusCode::kNotFound);
  EXPECT_THAT(Stages(backend_.GetJobHistory(id)), SizeIs(5));
}

TEST_F(InMemoryBackendTest, WatchUnknownJobIsNotFound) {
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id("job-nope");
  EXPECT_THAT(backend_.WatchJob(&call_, request, &stream),
              StatusIs(grpc::StatusCode::NOT_FOUND, "job-nope"));
  EXPECT_EQ(stream.size(), 0u);
}

TEST_F(InMemoryBackendTest, WatchJobEndsWhenTheCallIsDone) {
  backend_.SetNextJobProgression(JobProgression::Manual());
  const std::string id = CreateJob().id();
  FakeCallContext call(clock_);
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(id);
  BackgroundCall watch(
      &call, [&] { return backend_.WatchJob(&call, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  EXPECT_FALSE(watch.done());
  call.Cancel();
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_EQ(watch.status().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(InMemoryBackendTest, WatchJobEndsWhenTheStreamBreaks) {
  const std::string id = CreateJob().id();
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(id);
  BackgroundCall watch(
      &call_, [&] { return backend_.WatchJob(&call_, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  stream.Break();
  clock_->AdvanceBy(absl::Seconds(1));
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_FALSE(watch.status().ok());
}

TEST_F(InMemoryBackendTest, ListJobsFiltersByDatetimeRange) {
  // Jobs at 00:00:00, 00:01:00 and 00:02:00 on 2026-01-01 (UTC).
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(CreateJob().id());
    clock_->AdvanceBy(absl::Minutes(1));
  }
  const auto list = [&](const std::string& start, const std::string& end) {
    wf::ListJobsRequest request;
    request.set_start_datetime(start);
    request.set_end_datetime(end);
    FakeServerStream<wf::Job> stream;
    grpc::Status status = backend_.ListJobs(&call_, request, &stream);
    EXPECT_THAT(status, IsOk());
    std::vector<std::string> listed;
    for (const wf::Job& job : stream.messages()) listed.push_back(job.id());
    return listed;
  };
  EXPECT_THAT(list("", ""), ElementsAre(ids[0], ids[1], ids[2]));
  EXPECT_THAT(list("2026-01-01T00:00:30Z", ""), ElementsAre(ids[1], ids[2]));
  EXPECT_THAT(list("", "2026-01-01T00:01:00Z"), ElementsAre(ids[0], ids[1]));
  EXPECT_THAT(list("2026-01-01T01:00:30+01:00", "2026-01-01T00:01:30"),
              ElementsAre(ids[1]));
  EXPECT_THAT(list("2026-01-02", ""), IsEmpty());

  wf::ListJobsRequest bad;
  bad.set_end_datetime("yesterday");
  FakeServerStream<wf::Job> stream;
  EXPECT_THAT(backend_.ListJobs(&call_, bad, &stream),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                       "end_datetime \"yesterday\""));
  bad.set_start_datetime("2026-01-02T00:00:00Z");
  bad.set_end_datetime("2026-01-01T00:00:00Z");
  EXPECT_THAT(backend_.ListJobs(&call_, bad, &stream),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "is after"));
}

TEST_F(InMemoryBackendTest, PutJobSeedsAJobThatKeepsProgressing) {
  wf::Job job;
  job.set_id("seeded");
  job.set_serialized_graft("{}");
  job.mutable_state()->set_stage(wf::Job::SAVING);
  EXPECT_EQ(backend_.PutJob(job), "seeded");
  wf::GetJobRequest get;
  get.set_id("seeded");
  wf::Job fetched;
  ASSERT_THAT(backend_.GetJob(&call_, get, &fetched), IsOk());
  EXPECT_EQ(fetched.state().stage(), wf::Job::SAVING);
  clock_->AdvanceBy(absl::Seconds(1));
  EXPECT_EQ(backend_.GetJobState("seeded")->stage(), wf::Job::SUCCEEDED);
  EXPECT_FALSE(backend_.PutJob(wf::Job(), JobProgression::Manual()).empty());
}

TEST_F(InMemoryBackendTest, SucceededDownloadJobGetsAResultUrl) {
  wf::CreateJobRequest request;
  request.set_serialized_graft("{}");
  request.mutable_destination()->set_has_download_flag(true);
  wf::Job job;
  ASSERT_THAT(backend_.CreateJob(&call_, request, &job), IsOk());
  EXPECT_THAT(job.destination().download().result_url(), IsEmpty());
  clock_->AdvanceBy(absl::Minutes(1));
  EXPECT_THAT(backend_.FindJob(job.id())->destination().download().result_url(),
              HasSubstr(job.id()));
}

// --- XYZ ---

TEST_F(InMemoryBackendTest, CreateGetDeleteXYZ) {
  wf::CreateXYZRequest request;
  request.set_name("tiles");
  request.set_serialized_graft("{\"xyz\": 1}");
  request.set_channel("v0-19");
  request.set_days_to_expiration(3);
  wf::XYZ xyz;
  ASSERT_THAT(backend_.CreateXYZ(&call_, request, &xyz), IsOk());
  EXPECT_FALSE(xyz.id().empty());
  EXPECT_EQ(xyz.name(), "tiles");
  EXPECT_EQ(xyz.user(), "user-1");
  EXPECT_EQ(xyz.created_timestamp(), absl::ToUnixMillis(clock_->Now()));
  EXPECT_EQ(xyz.expires_timestamp().seconds(),
            absl::ToUnixSeconds(clock_->Now() + absl::Hours(72)));
  EXPECT_THAT(xyz.url_template(), HasSubstr(xyz.id()));
  EXPECT_THAT(xyz.url_template(), HasSubstr("{z}/{x}/{y}"));
  EXPECT_THAT(xyz.wmts_url_template(), HasSubstr(xyz.id()));

  wf::GetXYZRequest get;
  get.set_xyz_id(xyz.id());
  wf::XYZ fetched;
  ASSERT_THAT(backend_.GetXYZ(&call_, get, &fetched), IsOk());
  EXPECT_EQ(fetched.DebugString(), xyz.DebugString());

  wf::DeleteXYZRequest del;
  del.set_xyz_id(xyz.id());
  google::protobuf::Empty empty;
  EXPECT_THAT(backend_.DeleteXYZ(&call_, del, &empty), IsOk());
  EXPECT_THAT(backend_.GetXYZ(&call_, get, &fetched),
              StatusIs(grpc::StatusCode::NOT_FOUND, xyz.id()));
  EXPECT_THAT(backend_.DeleteXYZ(&call_, del, &empty),
              StatusIs(grpc::StatusCode::NOT_FOUND, xyz.id()));

  EXPECT_THAT(backend_.CreateXYZ(&call_, wf::CreateXYZRequest(), &xyz),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "serialized_graft"));
  EXPECT_THAT(backend_.GetXYZ(&call_, wf::GetXYZRequest(), &xyz),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "xyz_id"));
}

TEST_F(InMemoryBackendTest, ListXYZPublicOrCallersOwn) {
  FakeCallContext other(clock_);
  other.AddRequestMetadata("x-on-behalf-of-user", "other@example.com");
  const std::string mine_private = CreateXYZ(false).id();
  const std::string mine_public = CreateXYZ(true).id();
  const std::string theirs_public = CreateXYZ(true, &other).id();
  CreateXYZ(false, &other);

  const auto list = [&](bool is_public) {
    wf::ListXYZRequest request;
    request.set_public_(is_public);
    FakeServerStream<wf::XYZ> stream;
    EXPECT_THAT(backend_.ListXYZ(&call_, request, &stream), IsOk());
    std::vector<std::string> ids;
    for (const wf::XYZ& xyz : stream.messages()) ids.push_back(xyz.id());
    return ids;
  };
  EXPECT_THAT(list(false), ElementsAre(mine_private, mine_public));
  EXPECT_THAT(list(true), ElementsAre(mine_public, theirs_public));
}

wf::XYZLogRecord Log(const std::string& session, wf::LogRecord::Level level,
                     const std::string& message, int64_t timestamp = 0) {
  wf::XYZLogRecord log;
  log.set_session_id(session);
  log.mutable_record()->set_level(level);
  log.mutable_record()->set_message(message);
  log.mutable_record()->set_timestamp(timestamp);
  return log;
}

std::vector<std::string> Messages(
    const std::vector<wf::XYZLogRecord>& records) {
  std::vector<std::string> messages;
  for (const auto& r : records) messages.push_back(r.record().message());
  return messages;
}

TEST_F(InMemoryBackendTest, SessionLogsFilterAndStayOpenForAppendedRecords) {
  const std::string id = CreateXYZ(false).id();
  const int64_t now = absl::ToUnixMillis(clock_->Now());
  ASSERT_TRUE(
      backend_.AppendXYZLog(id, Log("s1", wf::LogRecord::ERROR, "old", 1))
          .ok());
  ASSERT_TRUE(
      backend_.AppendXYZLog(id, Log("s1", wf::LogRecord::WARNING, "w1")).ok());
  ASSERT_TRUE(
      backend_.AppendXYZLog(id, Log("s1", wf::LogRecord::DEBUG, "d1")).ok());
  ASSERT_TRUE(
      backend_.AppendXYZLog(id, Log("s2", wf::LogRecord::ERROR, "e2")).ok());

  FakeCallContext call(clock_);
  FakeServerStream<wf::XYZLogRecord> stream;
  wf::GetXYZSessionLogsRequest request;
  request.set_xyz_id(id);
  request.set_session_id("s1");
  request.set_level(wf::LogRecord::INFO);
  request.set_start_timestamp(now);
  BackgroundCall logs(&call, [&] {
    return backend_.GetXYZSessionLogs(&call, request, &stream);
  });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  EXPECT_THAT(Messages(stream.messages()), ElementsAre("w1"));
  EXPECT_EQ(stream.messages()[0].record().timestamp(), now);

  ASSERT_TRUE(
      backend_.AppendXYZLog(id, Log("s2", wf::LogRecord::ERROR, "skip")).ok());
  ASSERT_TRUE(
      backend_.AppendXYZLog(id, Log("s1", wf::LogRecord::ERROR, "e1")).ok());
  ASSERT_TRUE(stream.WaitForCount(2, kWait));
  EXPECT_THAT(Messages(stream.messages()), ElementsAre("w1", "e1"));
  EXPECT_FALSE(logs.done());

  call.Cancel();
  ASSERT_TRUE(logs.WaitDone());
  EXPECT_EQ(logs.status().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(InMemoryBackendTest, SessionLogsOfUnknownXYZ) {
  FakeServerStream<wf::XYZLogRecord> stream;
  wf::GetXYZSessionLogsRequest request;
  request.set_xyz_id("xyz-nope");
  EXPECT_THAT(backend_.GetXYZSessionLogs(&call_, request, &stream),
              StatusIs(grpc::StatusCode::NOT_FOUND, "xyz-nope"));
  EXPECT_EQ(backend_.AppendXYZLog("xyz-nope", wf::XYZLogRecord()).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(InMemoryBackendTest, SessionLogsEndAtTheDeadline) {
  const std::string id = CreateXYZ(false).id();
  FakeCallContext call(clock_);
  call.set_deadline(absl::Now() + absl::Milliseconds(50));
  FakeServerStream<wf::XYZLogRecord> stream;
  wf::GetXYZSessionLogsRequest request;
  request.set_xyz_id(id);
  // As the client sees it: its deadline passed.
  EXPECT_EQ(backend_.GetXYZSessionLogs(&call, request, &stream).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

// --- Access grants ---

discover::AccessGrant Grant(const std::string& asset, const std::string& user) {
  discover::AccessGrant grant;
  grant.set_asset_name(asset);
  grant.mutable_entity()->set_type("user-email");
  grant.mutable_entity()->set_id(user);
  grant.set_access("workflows/role/viewer");
  return grant;
}

TEST_F(InMemoryBackendTest, AccessGrantsCreateListDelete) {
  const std::string asset = "asset/workflow/a@x.com:wf";
  discover::CreateAccessGrantRequest create;
  discover::CreateAccessGrantResponse created;
  for (const char* user : {"b@x.com", "a@x.com", "allAuthenticatedUsers"}) {
    *create.mutable_access_grant() = Grant(asset, user);
    ASSERT_THAT(backend_.CreateAccessGrant(&call_, create, &created), IsOk());
  }
  *create.mutable_access_grant() = Grant("asset/workflow/other", "c@x.com");
  ASSERT_THAT(backend_.CreateAccessGrant(&call_, create, &created), IsOk());
  EXPECT_EQ(created.access_grant().create_time().seconds(),
            absl::ToUnixSeconds(clock_->Now()));

  discover::ListAccessGrantsStreamRequest list;
  list.set_asset_name(asset);
  FakeServerStream<discover::ListAccessGrantsStreamResponse> stream;
  ASSERT_THAT(backend_.ListAccessGrantsStream(&call_, list, &stream), IsOk());
  std::vector<std::string> entities;
  for (const auto& m : stream.messages()) {
    entities.push_back(m.access_grant().entity().id());
  }
  EXPECT_THAT(entities,
              ElementsAre("a@x.com", "allAuthenticatedUsers", "b@x.com"));

  discover::DeleteAccessGrantRequest del;
  *del.mutable_access_grant() = Grant(asset, "b@x.com");
  discover::DeleteAccessGrantResponse deleted;
  ASSERT_THAT(backend_.DeleteAccessGrant(&call_, del, &deleted), IsOk());
  EXPECT_TRUE(deleted.revoked());
  ASSERT_THAT(backend_.DeleteAccessGrant(&call_, del, &deleted), IsOk());
  EXPECT_FALSE(deleted.revoked());
  EXPECT_THAT(backend_.AccessGrantsFor(asset), SizeIs(2));
}

TEST_F(InMemoryBackendTest, AccessGrantValidationNamesTheField) {
  discover::CreateAccessGrantRequest create;
  discover::CreateAccessGrantResponse created;
  EXPECT_THAT(
      backend_.CreateAccessGrant(&call_, create, &created),
      StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "access_grant is required"));
  *create.mutable_access_grant() = Grant("", "a@x.com");
  EXPECT_THAT(
      backend_.CreateAccessGrant(&call_, create, &created),
      StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "access_grant.asset_name"));
  *create.mutable_access_grant() = Grant("asset/workflow/w", "");
  EXPECT_THAT(
      backend_.CreateAccessGrant(&call_, create, &created),
      StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "access_grant.entity.id"));
  create.mutable_access_grant()->mutable_entity()->set_id("a@x.com");
  create.mutable_access_grant()->mutable_entity()->set_type("robot");
  EXPECT_THAT(backend_.CreateAccessGrant(&call_, create, &created),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                       "access_grant.entity.type \"robot\""));

  discover::ListAccessGrantsStreamRequest list;
  FakeServerStream<discover::ListAccessGrantsStreamResponse> stream;
  EXPECT_THAT(backend_.ListAccessGrantsStream(&call_, list, &stream),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "asset_name"));
}

TEST_F(InMemoryBackendTest, ListAccessGrantsPages) {
  const std::string asset = "asset/workflow/w";
  discover::CreateAccessGrantRequest create;
  discover::CreateAccessGrantResponse created;
  for (int i = 0; i < 5; ++i) {
    *create.mutable_access_grant() = Grant(asset, absl::StrCat("u", i));
    ASSERT_THAT(backend_.CreateAccessGrant(&call_, create, &created), IsOk());
  }
  discover::ListAccessGrantsRequest request;
  request.set_asset_name(asset);
  request.set_page_size(2);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    discover::ListAccessGrantsResponse page;
    ASSERT_THAT(backend_.ListAccessGrants(&call_, request, &page), IsOk());
    for (const auto& g : page.access_grants()) seen.push_back(g.entity().id());
    request.set_page_token(page.next_page());
    ++pages;
  } while (!request.page_token().empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_THAT(seen, ElementsAre("u0", "u1", "u2", "u3", "u4"));

  request.set_page_token("garbage");
  discover::ListAccessGrantsResponse page;
  EXPECT_THAT(
      backend_.ListAccessGrants(&call_, request, &page),
      StatusIs(grpc::StatusCode::INVALID_ARGUMENT, "page_token \"garbage\""));
}

TEST_F(InMemoryBackendTest, ReplaceAccessGrant) {
  const std::string asset = "asset/workflow/w";
  discover::CreateAccessGrantRequest create;
  *create.mutable_access_grant() = Grant(asset, "old@x.com");
  discover::CreateAccessGrantResponse created;
  ASSERT_THAT(backend_.CreateAccessGrant(&call_, create, &created), IsOk());

  discover::ReplaceAccessGrantRequest replace;
  *replace.mutable_delete_access_grant() = Grant(asset, "old@x.com");
  *replace.mutable_create_access_grant() = Grant(asset, "new@x.com");
  discover::ReplaceAccessGrantResponse replaced;
  ASSERT_THAT(backend_.ReplaceAccessGrant(&call_, replace, &replaced), IsOk());
  EXPECT_EQ(replaced.access_grant().entity().id(), "new@x.com");
  const auto grants = backend_.AccessGrantsFor(asset);
  ASSERT_THAT(grants, SizeIs(1));
  EXPECT_EQ(grants[0].entity().id(), "new@x.com");

  replace.clear_create_access_grant();
  EXPECT_THAT(backend_.ReplaceAccessGrant(&call_, replace, &replaced),
              StatusIs(grpc::StatusCode::INVALID_ARGUMENT,
                       "create_access_grant is required"));
}

// --- Health ---

TEST_F(InMemoryBackendTest, HealthCheck) {
  HealthCheckRequest request;
  HealthCheckResponse response;
  ASSERT_THAT(backend_.Check(&call_, request, &response), IsOk());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  request.set_service("descarteslabs.workflows.JobAPI");
  EXPECT_THAT(
      backend_.Check(&call_, request, &response),
      StatusIs(grpc::StatusCode::NOT_FOUND, "descarteslabs.workflows.JobAPI"));
  backend_.health().SetStatus("descarteslabs.workflows.JobAPI",
                              HealthCheckResponse::NOT_SERVING);
  ASSERT_THAT(backend_.Check(&call_, request, &response), IsOk());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
}

std::vector<HealthCheckResponse::ServingStatus> Statuses(
    const std::vector<HealthCheckResponse>& responses) {
  std::vector<HealthCheckResponse::ServingStatus> statuses;
  for (const auto& r : responses) statuses.push_back(r.status());
  return statuses;
}

TEST_F(InMemoryBackendTest, HealthWatchSendsEveryChange) {
  FakeCallContext call(clock_);
  FakeServerStream<HealthCheckResponse> stream;
  HealthCheckRequest request;
  BackgroundCall watch(&call,
                       [&] { return backend_.Watch(&call, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  backend_.health().SetStatus("", HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(stream.WaitForCount(2, kWait));
  backend_.health().SetStatus("", HealthCheckResponse::NOT_SERVING);
  backend_.health().SetStatus("", HealthCheckResponse::UNKNOWN);
  ASSERT_TRUE(stream.WaitForCount(3, kWait));
  backend_.health().SetStatus("", HealthCheckResponse::SERVING);
  ASSERT_TRUE(stream.WaitForCount(4, kWait));
  EXPECT_FALSE(watch.done());
  call.Cancel();
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_THAT(
      Statuses(stream.messages()),
      ElementsAre(HealthCheckResponse::SERVING,
                  HealthCheckResponse::NOT_SERVING,
                  HealthCheckResponse::UNKNOWN, HealthCheckResponse::SERVING));
}

TEST_F(InMemoryBackendTest, HealthWatchUnknownServiceStaysOpen) {
  FakeCallContext call(clock_);
  FakeServerStream<HealthCheckResponse> stream;
  HealthCheckRequest request;
  request.set_service("descarteslabs.workflows.XYZAPI");
  BackgroundCall watch(&call,
                       [&] { return backend_.Watch(&call, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  EXPECT_FALSE(watch.done());
  backend_.health().SetStatus("descarteslabs.workflows.XYZAPI",
                              HealthCheckResponse::SERVING);
  ASSERT_TRUE(stream.WaitForCount(2, kWait));
  backend_.health().ClearStatus("descarteslabs.workflows.XYZAPI");
  ASSERT_TRUE(stream.WaitForCount(3, kWait));
  call.Cancel();
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_THAT(Statuses(stream.messages()),
              ElementsAre(HealthCheckResponse::SERVICE_UNKNOWN,
                          HealthCheckResponse::SERVING,
                          HealthCheckResponse::SERVICE_UNKNOWN));
}

TEST_F(InMemoryBackendTest, HealthWatchEndsAtHealthShutdown) {
  FakeServerStream<HealthCheckResponse> stream;
  BackgroundCall watch(&call_, [&] {
    return backend_.Watch(&call_, HealthCheckRequest(), &stream);
  });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));
  backend_.health().Shutdown();
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_EQ(watch.status().error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(InMemoryBackendTest, SharedHealthStateFromOptions) {
  auto health = std::make_shared<HealthState>();
  health->SetStatus("", HealthCheckResponse::NOT_SERVING);
  InMemoryBackend::Options options;
  options.clock = clock_;
  options.health = health;
  InMemoryBackend backend(options);
  HealthCheckResponse response;
  ASSERT_THAT(backend.Check(&call_, HealthCheckRequest(), &response), IsOk());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(backend.shared_health(), health);
}

// --- Whole backend ---

TEST_F(InMemoryBackendTest, ResetForgetsEverythingAndEndsOpenStreams) {
  Upsert("a@x.com:wf");
  const std::string xyz = CreateXYZ(false).id();
  backend_.SetDefaultJobProgression(JobProgression::Manual());
  const std::string job = CreateJob().id();
  backend_.health().SetStatus("", HealthCheckResponse::NOT_SERVING);

  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(job);
  BackgroundCall watch(
      &call_, [&] { return backend_.WatchJob(&call_, request, &stream); });
  ASSERT_TRUE(stream.WaitForCount(1, kWait));

  backend_.Reset();
  ASSERT_TRUE(watch.WaitDone());
  EXPECT_EQ(watch.status().error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(backend_.FindWorkflow("a@x.com:wf"), std::nullopt);
  EXPECT_EQ(backend_.FindXYZ(xyz), std::nullopt);
  EXPECT_EQ(backend_.FindJob(job), std::nullopt);
  EXPECT_THAT(backend_.health().GetStatus(""),
              Optional(HealthCheckResponse::SERVING));
  // The default progression is back to the configured one.
  const std::string after = CreateJob().id();
  clock_->AdvanceBy(absl::Minutes(1));
  EXPECT_EQ(backend_.GetJobState(after)->stage(), wf::Job::SUCCEEDED);
}

TEST_F(InMemoryBackendTest, ClockOutlivingTheBackendIsSafe) {
  auto clock = std::make_shared<SimulatedClock>();
  {
    InMemoryBackend backend(MakeOptions(clock));
    FakeCallContext call(clock);
    wf::CreateJobRequest request;
    request.set_serialized_graft("{}");
    wf::Job job;
    ASSERT_THAT(backend.CreateJob(&call, request, &job), IsOk());
  }
  clock->AdvanceBy(absl::Seconds(1));  // Must not call into the dead backend.
}

TEST_F(InMemoryBackendTest, RealClockJobsProgressInRealTime) {
  InMemoryBackend::Options options;
  options.default_progression = JobProgression::Succeed(absl::Milliseconds(1));
  InMemoryBackend backend(options);
  FakeCallContext call(Clock::Real());
  wf::CreateJobRequest create;
  create.set_serialized_graft("{}");
  wf::Job job;
  ASSERT_THAT(backend.CreateJob(&call, create, &job), IsOk());
  FakeServerStream<wf::Job::State> stream;
  wf::WatchJobRequest request;
  request.set_id(job.id());
  // Returns once the job has gone through its 4 ms of stages.
  EXPECT_THAT(backend.WatchJob(&call, request, &stream), IsOk());
  EXPECT_EQ(stream.messages().back().stage(), wf::Job::SUCCEEDED);
}

TEST_F(InMemoryBackendTest, ConcurrentJobsAndWatchersWhileTimeAdvances) {
  constexpr int kThreads = 4;
  constexpr int kJobsPerThread = 5;
  std::vector<std::thread> threads;
  std::vector<grpc::Status> results(kThreads * kJobsPerThread);
  std::vector<wf::Job::Stage> last(kThreads * kJobsPerThread);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int j = 0; j < kJobsPerThread; ++j) {
        FakeCallContext call(clock_);
        wf::CreateJobRequest create;
        create.set_serialized_graft("{}");
        wf::Job job;
        ASSERT_THAT(backend_.CreateJob(&call, create, &job), IsOk());
        FakeServerStream<wf::Job::State> stream;
        wf::WatchJobRequest request;
        request.set_id(job.id());
        const int index = t * kJobsPerThread + j;
        results[index] = backend_.WatchJob(&call, request, &stream);
        last[index] = stream.messages().back().stage();
      }
    });
  }
  absl::Notification all_done;
  std::thread ticker([&] {
    while (!all_done.WaitForNotificationWithTimeout(absl::Milliseconds(1))) {
      clock_->AdvanceBy(absl::Milliseconds(500));
    }
  });
  for (std::thread& thread : threads) thread.join();
  all_done.Notify();
  ticker.join();
  for (size_t i = 0; i < results.size(); ++i) {
    EXPECT_THAT(results[i], IsOk()) << i;
    EXPECT_EQ(last[i], wf::Job::SUCCEEDED) << i;
  }
  EXPECT_THAT(backend_.JobIds(), SizeIs(kThreads * kJobsPerThread));
}

}  // namespace
}  // namespace fake
}  // namespace workflows
