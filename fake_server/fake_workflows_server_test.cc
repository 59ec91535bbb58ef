#include "fake_server/fake_workflows_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>

#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "fake_server/certificates.h"
#include "fake_server/fake_call_context.h"
#include "fake_server/journal.h"
#include "fake_server/methods.h"
#include "fake_server/script.h"
#include "fake_server/session.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/discover.grpc.pb.h"
#include "proto/job.grpc.pb.h"
#include "proto/rpc_status.pb.h"
#include "proto/workflow.grpc.pb.h"
#include "proto/xyz.grpc.pb.h"

namespace workflows {
namespace fake {
namespace {

namespace dw = ::descarteslabs::workflows;
using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::SizeIs;

// Generous bound for "returns promptly" on a loaded 2-core machine; the
// real figures are milliseconds.
constexpr absl::Duration kPrompt = absl::Seconds(3);

std::chrono::system_clock::time_point In(absl::Duration duration) {
  return std::chrono::system_clock::now() +
         absl::ToChronoMilliseconds(duration);
}

std::string Metadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    const std::string& key) {
  auto it = metadata.find(key);
  if (it == metadata.end()) return "<absent>";
  return std::string(it->second.data(), it->second.size());
}

Rule ParseRule(const std::string& text) {
  Rule rule;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &rule))
      << text;
  return rule;
}

std::string TransportParamName(const testing::TestParamInfo<Transport>& info) {
  return info.param == Transport::kInProcess ? "InProcess" : "Tcp";
}

class FakeWorkflowsServerTest : public testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    FakeServerOptions options;
    options.transport = GetParam();
    options.clock = clock_;
    options.random_seed = 7;
    absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> server =
        FakeWorkflowsServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = server_->CreateChannel();
    jobs_ = dw::JobAPI::NewStub(channel_);
    workflows_ = dw::WorkflowAPI::NewStub(channel_);
    health_ = Health::NewStub(channel_);
  }

  void TearDown() override {
    if (server_ != nullptr) {
      EXPECT_THAT(server_->journal().InFlight(), IsEmpty());
    }
  }

  void AddRule(const std::string& text) {
    absl::Status status = server_->script().AddRule(ParseRule(text));
    ASSERT_TRUE(status.ok()) << status;
  }

  // Waits (up to kPrompt) for a call to `method` to end, then sets `call` to
  // it; fails if the journal then holds any number of such calls but one.
  //   RecordedCall call;
  //   ASSERT_TRUE(OnlyCall("WatchJob", &call));
  testing::AssertionResult OnlyCall(absl::string_view method,
                                    RecordedCall* call) {
    const absl::Status ended =
        server_->journal().WaitForCalls(method, 1, kPrompt);
    if (!ended.ok()) return testing::AssertionFailure() << ended;
    std::vector<RecordedCall> calls = server_->journal().Calls(method);
    if (calls.size() != 1) {
      return testing::AssertionFailure()
             << calls.size() << " calls to " << method << " in the journal, "
             << "expected 1";
    }
    *call = std::move(calls[0]);
    return testing::AssertionSuccess();
  }

  grpc::Status GetWmts(dw::WmtsUrlTemplateResponse* response = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(10)));
    dw::WmtsUrlTemplateResponse ignored;
    return workflows_->GetWmtsUrlTemplate(
        &context, dw::Empty(), response != nullptr ? response : &ignored);
  }

  std::string CreateJob() {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(10)));
    dw::CreateJobRequest request;
    request.set_serialized_graft(R"({"returns": "x"})");
    dw::Job job;
    grpc::Status status = jobs_->CreateJob(&context, request, &job);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return job.id();
  }

  std::shared_ptr<SimulatedClock> clock_ = std::make_shared<SimulatedClock>();
  std::unique_ptr<FakeWorkflowsServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<dw::JobAPI::Stub> jobs_;
  std::unique_ptr<dw::WorkflowAPI::Stub> workflows_;
  std::unique_ptr<Health::Stub> health_;
};

INSTANTIATE_TEST_SUITE_P(Transports, FakeWorkflowsServerTest,
                         testing::Values(Transport::kInProcess,
                                         Transport::kInsecureTcp),
                         TransportParamName);

TEST_P(FakeWorkflowsServerTest, UnscriptedCallsReachTheInMemoryBackend) {
  const std::string id = CreateJob();
  ASSERT_FALSE(id.empty());

  grpc::ClientContext context;
  dw::GetJobRequest request;
  request.set_id(id);
  dw::Job job;
  ASSERT_TRUE(jobs_->GetJob(&context, request, &job).ok());
  EXPECT_EQ(job.id(), id);
  EXPECT_EQ(job.state().stage(), dw::Job::QUEUED);

  grpc::ClientContext missing_context;
  dw::GetWorkflowRequest missing;
  missing.set_id("nobody@example.com:nothing");
  dw::Workflow workflow;
  EXPECT_EQ(workflows_->GetWorkflow(&missing_context, missing, &workflow)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);

  std::vector<RecordedCall> calls = server_->journal().Calls();
  ASSERT_THAT(calls, SizeIs(3));
  EXPECT_EQ(calls[0].method(), "/descarteslabs.workflows.JobAPI/CreateJob");
  EXPECT_EQ(calls[0].status_code(), "OK");
  EXPECT_THAT(calls[0].responses(), SizeIs(1));
  EXPECT_EQ(calls[0].rule(), "");
  EXPECT_EQ(calls[2].status_code(), "NOT_FOUND");
  EXPECT_EQ(calls[0].start_time().seconds(),
            absl::ToUnixSeconds(clock_->Now()));
}

TEST_P(FakeWorkflowsServerTest,
       FailSendsCodeDetailsTrailersAndInitialMetadata) {
  AddRule(R"pb(
    method: "GetWmtsUrlTemplate"
    name: "throttled"
    behavior {
      initial_metadata { key: "x-wf-warnings" value: "slow down" }
      trailing_metadata { key: "retry-after" value: "3" }
      fail {
        code: "RESOURCE_EXHAUSTED"
        message: "quota"
        details {
          [type.googleapis.com/descarteslabs.workflows.Job.Error] {
            code: ERROR_OOM
            message: "detail"
          }
        }
      }
    }
  )pb");
  grpc::ClientContext context;
  dw::WmtsUrlTemplateResponse response;
  grpc::Status status =
      workflows_->GetWmtsUrlTemplate(&context, dw::Empty(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(status.error_message(), "quota");
  EXPECT_EQ(Metadata(context.GetServerTrailingMetadata(), "retry-after"), "3");
  EXPECT_EQ(Metadata(context.GetServerInitialMetadata(), "x-wf-warnings"),
            "slow down");
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(status.error_details()));
  EXPECT_EQ(details.code(), static_cast<int>(status.error_code()));
  ASSERT_THAT(details.details(), SizeIs(1));
  dw::Job::Error error;
  ASSERT_TRUE(details.details(0).UnpackTo(&error));
  EXPECT_EQ(error.code(), dw::ERROR_OOM);

  RecordedCall call;
  ASSERT_TRUE(OnlyCall("GetWmtsUrlTemplate", &call));
  EXPECT_EQ(call.rule(), "throttled");
  EXPECT_EQ(call.status_code(), "RESOURCE_EXHAUSTED");
  EXPECT_THAT(call.responses(), IsEmpty());
}

// The adapters name each method's path by hand: every method the scenario
// format knows is served under its full path (a generic call with an empty
// payload reaches it), and each call is journaled under that path.
TEST_P(FakeWorkflowsServerTest, ServesEveryMethodUnderItsFullPath) {
  grpc::Slice empty_payload;
  const grpc::ByteBuffer empty_request(&empty_payload, 1);
  for (const MethodInfo& method : AllMethods()) {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(10)));
    grpc::Status status;
    if (method.server_streaming) {
      std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
          grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(
              channel_.get(),
              grpc::internal::RpcMethod(
                  method.full_name.c_str(),
                  grpc::internal::RpcMethod::SERVER_STREAMING),
              &context, empty_request));
      // Health/Watch streams until cancelled; one message is enough.
      grpc::ByteBuffer message;
      if (reader->Read(&message)) context.TryCancel();
      status = reader->Finish();
    } else {
      grpc::ByteBuffer response;
      status = grpc::internal::BlockingUnaryCall(
          channel_.get(),
          grpc::internal::RpcMethod(method.full_name.c_str(),
                                    grpc::internal::RpcMethod::NORMAL_RPC),
          &context, empty_request, &response);
    }
    EXPECT_NE(status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << method.full_name;
    absl::Status journaled =
        server_->journal().WaitForCalls(method.full_name, 1, absl::Seconds(10));
    EXPECT_TRUE(journaled.ok()) << journaled;
  }
  EXPECT_THAT(server_->journal().Calls(), SizeIs(AllMethods().size()));
}

// A payload that does not parse is refused before anything else runs, with
// the status gRPC's generated handlers give, and is not journaled.
TEST_P(FakeWorkflowsServerTest, UnparsableRequestIsInternalAndJournaled) {
  grpc::Slice garbage(std::string("\xff\xff\xff", 3));
  const grpc::ByteBuffer request(&garbage, 1);
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(10)));
  grpc::ByteBuffer response;
  grpc::Status status = grpc::internal::BlockingUnaryCall(
      channel_.get(),
      grpc::internal::RpcMethod("/descarteslabs.workflows.JobAPI/GetJob",
                                grpc::internal::RpcMethod::NORMAL_RPC),
      &context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(),
              HasSubstr("cannot parse the request as a "
                        "descarteslabs.workflows.GetJobRequest"));
  const std::vector<RecordedCall> calls = server_->journal().Calls("GetJob");
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].status_code(), "INTERNAL");
  EXPECT_EQ(calls[0].status_message(), status.error_message());
  ASSERT_EQ(calls[0].requests_size(), 1);
  EXPECT_EQ(calls[0].requests(0).value(), "\xff\xff\xff");
}

// Past the fake's own limit (4 MiB) but within gRPC's (a margin above): the
// fake refuses it itself, and journals it, truncated.
TEST_P(FakeWorkflowsServerTest,
       OversizeRequestIsResourceExhaustedAndJournaled) {
  dw::GetJobRequest request;
  request.set_id(std::string(5 << 20, 'x'));
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(30)));
  dw::Job job;
  const grpc::Status status = jobs_->GetJob(&context, request, &job);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(),
              AllOf(HasSubstr("larger than the fake server's limit of "
                              "4194304 bytes"),
                    HasSubstr("--max_receive_message_bytes")));
  const std::vector<RecordedCall> calls = server_->journal().Calls("GetJob");
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].status_code(), "RESOURCE_EXHAUSTED");
  ASSERT_EQ(calls[0].requests_size(), 1);
  EXPECT_EQ(calls[0].requests(0).value().size(), 64 << 10);
  ASSERT_EQ(calls[0].truncations_size(), 1);
  EXPECT_EQ(calls[0].truncations(0).field(), "requests[0]");
  EXPECT_EQ(calls[0].truncations(0).original_bytes(), request.ByteSizeLong());
}

TEST_P(FakeWorkflowsServerTest, DelayThenPassThrough) {
  AddRule(R"pb(
    method: "GetWmtsUrlTemplate"
    behavior {
      delay { nanos: 30000000 }
      pass_through: true
    }
  )pb");
  const absl::Time start = absl::Now();
  dw::WmtsUrlTemplateResponse response;
  ASSERT_TRUE(GetWmts(&response).ok());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_FALSE(response.wmts_url_template().empty());
}

TEST_P(FakeWorkflowsServerTest, DelayLongerThanTheDeadlineExpiresAtOnce) {
  AddRule(R"pb(
    method: "GetWmtsUrlTemplate"
    behavior {
      delay { seconds: 3600 }
      pass_through: true
    }
  )pb");
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(5)));
  dw::WmtsUrlTemplateResponse response;
  grpc::Status status =
      workflows_->GetWmtsUrlTemplate(&context, dw::Empty(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server's answer, at once, not the client's own expiry after 5 s
  // (a wall-clock bound alone can fail on a loaded machine under TSan).
  EXPECT_THAT(status.error_message(),
              HasSubstr("outlasts the client's deadline"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_P(FakeWorkflowsServerTest, HangEndsAtTheClientDeadline) {
  AddRule(R"pb(method: "GetJob"
               behavior { hang: true })pb");
  grpc::ClientContext context;
  context.set_deadline(In(absl::Milliseconds(50)));
  dw::GetJobRequest request;
  request.set_id("job-1");
  dw::Job job;
  const absl::Time start = absl::Now();
  EXPECT_EQ(jobs_->GetJob(&context, request, &job).error_code(),
            grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(45));
  // The server side ends too; nothing is left dangling.
  ASSERT_TRUE(server_->journal().WaitForCalls("GetJob", 1, kPrompt).ok());
  EXPECT_THAT(server_->journal().InFlight(), IsEmpty());
}

TEST_P(FakeWorkflowsServerTest, HangEndsWhenTheClientCancels) {
  AddRule(R"pb(method: "GetJob"
               behavior { hang: true })pb");
  grpc::ClientContext context;
  std::thread canceller([&] {
    ASSERT_TRUE(server_->journal().WaitForInFlight("GetJob", 1, kPrompt).ok());
    context.TryCancel();
  });
  dw::GetJobRequest request;
  request.set_id("job-1");
  dw::Job job;
  EXPECT_EQ(jobs_->GetJob(&context, request, &job).error_code(),
            grpc::StatusCode::CANCELLED);
  canceller.join();
  ASSERT_TRUE(server_->journal().WaitForCalls("GetJob", 1, kPrompt).ok());
}

TEST_P(FakeWorkflowsServerTest, ExpireDeadlineRecordsTheClientsDeadline) {
  AddRule(R"pb(method: "GetJob"
               behavior { expire_deadline: true })pb");
  for (absl::Duration timeout : {absl::Seconds(5), absl::Hours(24)}) {
    server_->journal().Clear();
    const absl::Time start = absl::Now();
    grpc::ClientContext context;
    context.set_deadline(In(timeout));
    dw::GetJobRequest request;
    request.set_id("job-1");
    dw::Job job;
    EXPECT_EQ(jobs_->GetJob(&context, request, &job).error_code(),
              grpc::StatusCode::DEADLINE_EXCEEDED);
    const absl::Duration took = absl::Now() - start;
    EXPECT_LT(took, kPrompt);
    RecordedCall call;
    ASSERT_TRUE(OnlyCall("GetJob", &call));
    ASSERT_TRUE(call.has_deadline_remaining());
    const absl::Duration remaining =
        absl::Seconds(call.deadline_remaining().seconds()) +
        absl::Nanoseconds(call.deadline_remaining().nanos());
    // gRPC sends the timeout rounded up to a few significant digits
    // (grpc-timeout), so the server may see slightly more than was set.
    EXPECT_LE(remaining, timeout * 1.01 + absl::Seconds(1));
    // The call reached the server within `took` of the deadline being set
    // (relative to the call, not a fixed budget, so load cannot fail it).
    EXPECT_GE(remaining, timeout - took - absl::Milliseconds(10));
  }
}

TEST_P(FakeWorkflowsServerTest, NoDeadlineLeavesDeadlineUnset) {
  ASSERT_TRUE(CreateJob().size() > 0);
  grpc::ClientContext context;  // No deadline.
  dw::WmtsUrlTemplateResponse response;
  ASSERT_TRUE(
      workflows_->GetWmtsUrlTemplate(&context, dw::Empty(), &response).ok());
  RecordedCall call;
  ASSERT_TRUE(OnlyCall("GetWmtsUrlTemplate", &call));
  EXPECT_FALSE(call.has_deadline_remaining());
}

TEST_P(FakeWorkflowsServerTest, FailNTimesThenPassThrough) {
  AddRule(R"pb(
    method: "GetWmtsUrlTemplate"
    fail_times: 2
    behavior_on_fail { fail { code: "UNAVAILABLE" message: "flaky" } }
  )pb");
  EXPECT_EQ(GetWmts().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(GetWmts().error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(GetWmts().ok());
  EXPECT_TRUE(GetWmts().ok());
}

TEST_P(FakeWorkflowsServerTest, OrderedSequenceThenDefault) {
  AddRule(R"pb(
    method: "WorkflowAPI/GetWmtsUrlTemplate"
    sequence { fail { code: "NOT_FOUND" } }
    sequence {
      reply {
        [type.googleapis.com/descarteslabs.workflows.WmtsUrlTemplateResponse] {
          wmts_url_template: "https://scripted/{z}/{x}/{y}"
        }
      }
    }
    sequence { fail { code: "INTERNAL" } }
    behavior { fail { code: "ABORTED" } }
  )pb");
  EXPECT_EQ(GetWmts().error_code(), grpc::StatusCode::NOT_FOUND);
  dw::WmtsUrlTemplateResponse response;
  ASSERT_TRUE(GetWmts(&response).ok());
  EXPECT_EQ(response.wmts_url_template(), "https://scripted/{z}/{x}/{y}");
  EXPECT_EQ(GetWmts().error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(GetWmts().error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(GetWmts().error_code(), grpc::StatusCode::ABORTED);
}

TEST_P(FakeWorkflowsServerTest, StreamSendsKMessagesThenFails) {
  AddRule(R"pb(
    method: "WatchJob"
    behavior {
      initial_metadata { key: "x-wf-warnings" value: "stream warning" }
      trailing_metadata { key: "grpc-retry-pushback-ms" value: "10" }
      stream {
        messages {
          [type.googleapis.com/descarteslabs.workflows.Job.State] {
            stage: QUEUED
          }
        }
        messages {
          [type.googleapis.com/descarteslabs.workflows.Job.State] {
            stage: RUNNING
          }
        }
        status { code: "UNAVAILABLE" message: "stream dropped" }
      }
    }
  )pb");
  grpc::ClientContext context;
  dw::WatchJobRequest request;
  request.set_id("job-1");
  auto reader = jobs_->WatchJob(&context, request);
  std::vector<dw::Job::Stage> stages;
  dw::Job::State state;
  while (reader->Read(&state)) stages.push_back(state.stage());
  grpc::Status status = reader->Finish();
  EXPECT_THAT(stages, ElementsAre(dw::Job::QUEUED, dw::Job::RUNNING));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status.error_message(), "stream dropped");
  EXPECT_EQ(
      Metadata(context.GetServerTrailingMetadata(), "grpc-retry-pushback-ms"),
      "10");
  EXPECT_EQ(Metadata(context.GetServerInitialMetadata(), "x-wf-warnings"),
            "stream warning");
  RecordedCall call;
  ASSERT_TRUE(OnlyCall("WatchJob", &call));
  EXPECT_THAT(call.responses(), SizeIs(2));
}

TEST_P(FakeWorkflowsServerTest, StreamWithZeroMessagesEndsOk) {
  CreateJob();  // ListJobs would otherwise return it.
  AddRule(R"pb(method: "ListJobs"
               behavior { stream {} })pb");
  grpc::ClientContext context;
  auto reader = jobs_->ListJobs(&context, dw::ListJobsRequest());
  dw::Job job;
  EXPECT_FALSE(reader->Read(&job));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_P(FakeWorkflowsServerTest, StreamDelaysEachMessage) {
  AddRule(R"pb(
    method: "WatchJob"
    behavior {
      stream {
        delay_per_message { nanos: 10000000 }
        messages {
          [type.googleapis.com/descarteslabs.workflows.Job.State] {
            stage: QUEUED
          }
        }
        messages {
          [type.googleapis.com/descarteslabs.workflows.Job.State] {
            stage: RUNNING
          }
        }
        messages {
          [type.googleapis.com/descarteslabs.workflows.Job.State] {
            stage: SUCCEEDED
          }
        }
      }
    }
  )pb");
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  dw::WatchJobRequest request;
  request.set_id("job-1");
  auto reader = jobs_->WatchJob(&context, request);
  int count = 0;
  dw::Job::State state;
  while (reader->Read(&state)) ++count;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(count, 3);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
}

TEST_P(FakeWorkflowsServerTest, PassThroughStreamBreaksAfterNMessages) {
  const std::string id = CreateJob();
  AddRule(R"pb(
    method: "WatchJob"
    behavior {
      stream {
        pass_through_messages: 1
        status { code: "UNAVAILABLE" message: "watch dropped" }
      }
    }
  )pb");
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(10)));
  dw::WatchJobRequest request;
  request.set_id(id);
  auto reader = jobs_->WatchJob(&context, request);
  std::vector<dw::Job::Stage> stages;
  dw::Job::State state;
  while (reader->Read(&state)) stages.push_back(state.stage());
  EXPECT_THAT(stages, ElementsAre(dw::Job::QUEUED));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

// `stream { delay_per_message {...} }` alone used to be a silent zero-message
// stream; `pass_through: true` now slows the backend's own stream, uncut.
TEST_P(FakeWorkflowsServerTest, PassThroughStreamWithDelayPerMessage) {
  const std::string id = CreateJob();
  AddRule(R"pb(
    method: "WatchJob"
    name: "slow watch"
    behavior {
      stream {
        pass_through: true
        delay_per_message { nanos: 10000000 }
      }
    }
  )pb");
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(10)));
  dw::WatchJobRequest request;
  request.set_id(id);
  auto reader = jobs_->WatchJob(&context, request);
  std::vector<dw::Job::Stage> stages;
  dw::Job::State state;
  while (reader->Read(&state)) {
    stages.push_back(state.stage());
    // The job waits on the simulated clock: move it to the end once the
    // first state is in, so the backend sends the rest.
    if (stages.size() == 1) clock_->AdvanceBy(absl::Hours(1));
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_THAT(stages,
              ElementsAre(dw::Job::QUEUED, dw::Job::PREPARING, dw::Job::RUNNING,
                          dw::Job::SAVING, dw::Job::SUCCEEDED));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
  RecordedCall call;
  ASSERT_TRUE(OnlyCall("WatchJob", &call));
  EXPECT_EQ(call.rule(), "slow watch");
  EXPECT_THAT(call.responses(), SizeIs(5));
}

TEST_P(FakeWorkflowsServerTest, StreamThenHangStaysOpenUntilTheDeadline) {
  AddRule(R"pb(
    method: "WatchJob"
    behavior {
      stream {
        messages {
          [type.googleapis.com/descarteslabs.workflows.Job.State] {
            stage: RUNNING
          }
        }
        then_hang: true
      }
    }
  )pb");
  grpc::ClientContext context;
  context.set_deadline(In(absl::Milliseconds(100)));
  dw::WatchJobRequest request;
  request.set_id("job-1");
  const absl::Time start = absl::Now();
  auto reader = jobs_->WatchJob(&context, request);
  dw::Job::State state;
  ASSERT_TRUE(reader->Read(&state));
  EXPECT_EQ(state.stage(), dw::Job::RUNNING);
  // Without then_hang the stream would end OK here.
  EXPECT_FALSE(reader->Read(&state));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(95));
  RecordedCall call;
  ASSERT_TRUE(OnlyCall("WatchJob", &call));
  // Over TCP the server learns the deadline from a rounded-up grpc-timeout,
  // so the client's own expiry (RST_STREAM) reaches it first; within the
  // deadline tolerance that still counts as the deadline, as the client saw.
  EXPECT_EQ(call.status_code(), "DEADLINE_EXCEEDED");
  EXPECT_THAT(call.responses(), SizeIs(1));
}

TEST_P(FakeWorkflowsServerTest,
       PassThroughCutThenHangEndsWhenTheClientCancels) {
  const std::string id = CreateJob();
  AddRule(R"pb(
    method: "WatchJob"
    behavior { stream { pass_through_messages: 1 then_hang: true } }
  )pb");
  grpc::ClientContext context;
  dw::WatchJobRequest request;
  request.set_id(id);
  auto reader = jobs_->WatchJob(&context, request);
  dw::Job::State state;
  ASSERT_TRUE(reader->Read(&state));
  EXPECT_EQ(state.stage(), dw::Job::QUEUED);
  // The job would move on, but the cut stream sends nothing more.
  clock_->AdvanceBy(absl::Hours(1));
  ASSERT_TRUE(server_->journal().WaitForInFlight("WatchJob", 1, kPrompt).ok());
  context.TryCancel();
  EXPECT_FALSE(reader->Read(&state));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  RecordedCall call;
  ASSERT_TRUE(OnlyCall("WatchJob", &call));
  EXPECT_THAT(call.responses(), SizeIs(1));
}

TEST_P(FakeWorkflowsServerTest, ResetCancelsAUnaryCall) {
  AddRule(R"pb(method: "GetJob"
               name: "rst"
               behavior {
                 reset: true
                 trailing_metadata { key: "retry-after" value: "1" }
               })pb");
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(10)));
  dw::GetJobRequest request;
  request.set_id("job-1");
  dw::Job job;
  EXPECT_EQ(jobs_->GetJob(&context, request, &job).error_code(),
            grpc::StatusCode::CANCELLED);
  // A reset carries no trailers.
  EXPECT_EQ(Metadata(context.GetServerTrailingMetadata(), "retry-after"),
            "<absent>");
  RecordedCall call;
  ASSERT_TRUE(OnlyCall("GetJob", &call));
  EXPECT_EQ(call.rule(), "rst");
  EXPECT_EQ(call.status_code(), "CANCELLED");
  EXPECT_THAT(call.status_message(), HasSubstr("scripted reset"));
}

TEST_P(FakeWorkflowsServerTest, StreamThenResetAfterKMessages) {
  AddRule(R"pb(
    method: "WatchJob"
    behavior {
      stream {
        messages {
          [type.googleapis.com/descarteslabs.workflows.Job.State] {
            stage: QUEUED
          }
        }
        messages {
          [type.googleapis.com/descarteslabs.workflows.Job.State] {
            stage: RUNNING
          }
        }
        then_reset: true
      }
    }
  )pb");
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(10)));
  dw::WatchJobRequest request;
  request.set_id("job-1");
  auto reader = jobs_->WatchJob(&context, request);
  std::vector<dw::Job::Stage> stages;
  dw::Job::State state;
  while (reader->Read(&state)) stages.push_back(state.stage());
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // Like a real RST_STREAM, the reset may overtake messages the client had
  // not read yet, so the client sees a prefix of what was sent.
  EXPECT_LE(stages.size(), 2);
  RecordedCall call;
  ASSERT_TRUE(OnlyCall("WatchJob", &call));
  EXPECT_THAT(call.responses(), SizeIs(2));
  EXPECT_EQ(call.status_code(), "CANCELLED");
  EXPECT_THAT(call.status_message(), HasSubstr("scripted then_reset"));
}

TEST_P(FakeWorkflowsServerTest, MatchesOnMetadataAndRequestFields) {
  AddRule(R"pb(
    method: "GetJob"
    name: "tenant-b"
    match { metadata { key: "x-tenant" value: "b" } }
    behavior { fail { code: "PERMISSION_DENIED" } }
  )pb");
  AddRule(R"pb(
    method: "GetJob"
    name: "bad-job"
    match { request_textproto: "id: \"job-bad\"" }
    behavior { fail { code: "DATA_LOSS" } }
  )pb");
  const std::string good = CreateJob();
  auto get_job = [&](const std::string& id, const std::string& tenant) {
    grpc::ClientContext context;
    if (!tenant.empty()) context.AddMetadata("x-tenant", tenant);
    dw::GetJobRequest request;
    request.set_id(id);
    dw::Job job;
    return jobs_->GetJob(&context, request, &job).error_code();
  };
  EXPECT_EQ(get_job(good, ""), grpc::StatusCode::OK);
  EXPECT_EQ(get_job(good, "a"), grpc::StatusCode::OK);
  EXPECT_EQ(get_job(good, "b"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(get_job("job-bad", ""), grpc::StatusCode::DATA_LOSS);
  std::vector<RecordedCall> calls = server_->journal().Calls("GetJob");
  ASSERT_THAT(calls, SizeIs(4));
  EXPECT_EQ(calls[2].rule(), "tenant-b");
  EXPECT_EQ(calls[3].rule(), "bad-job");
}

TEST_P(FakeWorkflowsServerTest, ProbabilityIsReproducibleFromTheSeed) {
  const std::string rule = R"pb(
    method: "GetWmtsUrlTemplate"
    probability: 0.5
    behavior { fail { code: "UNAVAILABLE" } }
  )pb";
  AddRule(rule);
  std::vector<bool> first;
  for (int i = 0; i < 40; ++i) first.push_back(GetWmts().ok());
  server_->script().Clear();
  AddRule(rule);
  std::vector<bool> second;
  for (int i = 0; i < 40; ++i) second.push_back(GetWmts().ok());
  EXPECT_EQ(first, second);
  EXPECT_THAT(first, testing::Contains(true));
  EXPECT_THAT(first, testing::Contains(false));
}

TEST_P(FakeWorkflowsServerTest, AuthPolicyRefusesBadTokens) {
  AuthPolicy policy;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        require_bearer_token: true
        valid_tokens: "good"
        valid_tokens: "denied"
        expired_tokens: "old"
        permission_denied_tokens: "denied"
        permission_denied_retry_after: "30"
      )pb",
      &policy));
  server_->script().SetAuthPolicy(policy);
  auto call = [&](const std::string& authorization,
                  std::string* retry_after = nullptr) {
    grpc::ClientContext context;
    if (!authorization.empty()) {
      context.AddMetadata("authorization", authorization);
    }
    dw::WmtsUrlTemplateResponse response;
    grpc::Status status =
        workflows_->GetWmtsUrlTemplate(&context, dw::Empty(), &response);
    if (retry_after != nullptr) {
      *retry_after =
          Metadata(context.GetServerTrailingMetadata(), "retry-after");
    }
    return status;
  };
  EXPECT_TRUE(call("Bearer good").ok());
  EXPECT_EQ(call("").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("Bearer forged").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::Status expired = call("Bearer old");
  EXPECT_EQ(expired.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(expired.error_message(), HasSubstr("expired"));
  std::string retry_after;
  EXPECT_EQ(call("Bearer denied", &retry_after).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(retry_after, "30");

  // Health is exempt unless the policy says otherwise.
  grpc::ClientContext health_context;
  HealthCheckResponse health;
  EXPECT_TRUE(
      health_->Check(&health_context, HealthCheckRequest(), &health).ok());

  std::vector<RecordedCall> calls =
      server_->journal().Calls("GetWmtsUrlTemplate");
  ASSERT_THAT(calls, SizeIs(5));
  EXPECT_TRUE(calls[0].identity().has_bearer_token());
  EXPECT_FALSE(calls[1].identity().has_bearer_token());
  EXPECT_EQ(calls[1].rule(), kAuthPolicyRuleName);
}

TEST_P(FakeWorkflowsServerTest, ConcurrentCallsWhileTheScriptChanges) {
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 40;
  std::atomic<bool> unexpected{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        grpc::StatusCode code = GetWmts().error_code();
        if (code != grpc::StatusCode::OK &&
            code != grpc::StatusCode::UNAVAILABLE &&
            code != grpc::StatusCode::NOT_FOUND) {
          unexpected = true;
        }
      }
    });
  }
  // Keep changing the script while the calls run.
  for (int round = 0; server_->journal().CountCalls("GetWmtsUrlTemplate") <
                      kThreads * kCallsPerThread;
       ++round) {
    AddRule(round % 2 == 0
                ? R"pb(method: "GetWmtsUrlTemplate"
                       behavior { fail { code: "UNAVAILABLE" } })pb"
                : R"pb(method: "GetWmtsUrlTemplate"
                       fail_times: 1
                       behavior_on_fail { fail { code: "NOT_FOUND" } })pb");
    if (round % 5 == 4) server_->script().Clear();
    if (round > 100000) break;
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_FALSE(unexpected);
  EXPECT_EQ(server_->journal().CountCalls("GetWmtsUrlTemplate"),
            kThreads * kCallsPerThread);
}

TEST_P(FakeWorkflowsServerTest, ShutdownIsPromptWithHungCallsAndOpenStreams) {
  const std::string id = CreateJob();  // Stays QUEUED: the clock is frozen.
  AddRule(R"pb(method: "GetJob"
               behavior { hang: true })pb");
  constexpr int kEach = 3;
  std::vector<grpc::StatusCode> codes(2 * kEach, grpc::StatusCode::OK);
  std::vector<std::thread> threads;
  for (int i = 0; i < kEach; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext context;  // No deadline: hangs until shutdown.
      dw::GetJobRequest request;
      request.set_id(id);
      dw::Job job;
      codes[i] = jobs_->GetJob(&context, request, &job).error_code();
    });
    threads.emplace_back([&, i] {
      grpc::ClientContext context;
      dw::WatchJobRequest request;
      request.set_id(id);
      auto reader = jobs_->WatchJob(&context, request);
      dw::Job::State state;
      while (reader->Read(&state)) {
      }
      codes[kEach + i] = reader->Finish().error_code();
    });
  }
  ASSERT_TRUE(
      server_->journal().WaitForInFlight("GetJob", kEach, kPrompt).ok());
  ASSERT_TRUE(
      server_->journal().WaitForInFlight("WatchJob", kEach, kPrompt).ok());

  const absl::Time start = absl::Now();
  server_->Shutdown();
  const absl::Duration took = absl::Now() - start;
  for (std::thread& thread : threads) thread.join();
  std::cout << "Shutdown with " << 2 * kEach << " calls in flight took "
            << absl::FormatDuration(took) << "\n";
  EXPECT_LT(took, absl::Seconds(1));
  for (grpc::StatusCode code : codes) {
    EXPECT_THAT(code, AnyOf(grpc::StatusCode::UNAVAILABLE,
                            grpc::StatusCode::CANCELLED));
  }
  EXPECT_THAT(server_->journal().InFlight(), IsEmpty());
  EXPECT_TRUE(server_->is_shut_down());
}

TEST_P(FakeWorkflowsServerTest, ConcurrentShutdownsAllReturnOnceDone) {
  const std::string id = CreateJob();
  AddRule(R"pb(method: "GetJob"
               behavior { hang: true })pb");
  constexpr int kCalls = 4;
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&] {
      grpc::ClientContext context;
      dw::GetJobRequest request;
      request.set_id(id);
      dw::Job job;
      jobs_->GetJob(&context, request, &job).IgnoreError();
    });
  }
  ASSERT_TRUE(
      server_->journal().WaitForInFlight("GetJob", kCalls, kPrompt).ok());

  // Every caller, not just the one that does the work, returns only once
  // the server has stopped: no handler is left running.
  constexpr int kShutdowns = 8;
  absl::Notification go;
  std::atomic<int> returned_early{0};
  std::vector<std::thread> stoppers;
  for (int i = 0; i < kShutdowns; ++i) {
    stoppers.emplace_back([&, i] {
      go.WaitForNotification();
      server_->Shutdown(absl::Milliseconds(10 * i));
      if (!server_->journal().InFlight().empty()) ++returned_early;
      EXPECT_TRUE(server_->is_shut_down());
    });
  }
  go.Notify();
  for (std::thread& thread : stoppers) thread.join();
  for (std::thread& thread : callers) thread.join();
  EXPECT_EQ(returned_early.load(), 0);
  EXPECT_EQ(server_->journal().CountCalls("GetJob"), kCalls);
  // And once more, as the destructor (TearDown) will too.
  server_->Shutdown();
  EXPECT_TRUE(server_->is_shut_down());
}

TEST_P(FakeWorkflowsServerTest, HealthCheckAndWatchFollowStatusChanges) {
  grpc::ClientContext check_context;
  HealthCheckResponse response;
  ASSERT_TRUE(
      health_->Check(&check_context, HealthCheckRequest(), &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);

  HealthCheckRequest jobs;
  jobs.set_service("descarteslabs.workflows.JobAPI");
  grpc::ClientContext unknown_context;
  EXPECT_EQ(health_->Check(&unknown_context, jobs, &response).error_code(),
            grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext watch_context;
  watch_context.set_deadline(In(absl::Seconds(30)));
  auto reader = health_->Watch(&watch_context, jobs);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVICE_UNKNOWN);
  server_->SetHealth(jobs.service(), HealthCheckResponse::SERVING);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  server_->SetHealth(jobs.service(), HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  watch_context.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(server_->journal().WaitForCalls("Watch", 1, kPrompt).ok());

  grpc::ClientContext after_context;
  ASSERT_TRUE(health_->Check(&after_context, jobs, &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
}

TEST_P(FakeWorkflowsServerTest, HealthCallsAreScriptable) {
  AddRule(R"pb(method: "grpc.health.v1.Health/Check"
               behavior { hang: true })pb");
  grpc::ClientContext context;
  context.set_deadline(In(absl::Milliseconds(50)));
  HealthCheckResponse response;
  EXPECT_EQ(
      health_->Check(&context, HealthCheckRequest(), &response).error_code(),
      grpc::StatusCode::DEADLINE_EXCEEDED);
  ASSERT_TRUE(server_->journal().WaitForCalls("Check", 1, kPrompt).ok());
}

TEST_P(FakeWorkflowsServerTest, JournalWaitsAndDumpsTextProto) {
  std::thread caller([&] { CreateJob(); });
  ASSERT_TRUE(server_->journal().WaitForCalls("CreateJob", 1, kPrompt).ok());
  caller.join();
  absl::Status timeout =
      server_->journal().WaitForCalls("GetJob", 2, absl::Milliseconds(10));
  EXPECT_EQ(timeout.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(timeout.message(),
              HasSubstr("2 calls to GetJob to end, saw 0; calls ended: "
                        "/descarteslabs.workflows.JobAPI/CreateJob x1"));

  const std::string text =
      server_->journal().ToTextProto({.deterministic = true});
  EXPECT_THAT(
      text,
      HasSubstr(R"(method: "/descarteslabs.workflows.JobAPI/CreateJob")"));
  EXPECT_THAT(text, HasSubstr("[type.googleapis.com/descarteslabs.workflows."
                              "CreateJobRequest]"));
  EXPECT_THAT(text, HasSubstr(R"(status_code: "OK")"));
  EXPECT_THAT(text, testing::Not(HasSubstr("start_time")));
  EXPECT_THAT(text, testing::Not(HasSubstr("peer")));
  EXPECT_THAT(text, testing::Not(HasSubstr("user-agent")));
  JournalDump dump;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &dump));
  EXPECT_THAT(dump.calls(), SizeIs(1));
}

// Sessions in process: Script::LoadSession scopes rules to calls tagged with
// kSessionMetadataKey, the journal records each call's session, and
// ResetSession ends one session only; over every transport.
TEST_P(FakeWorkflowsServerTest, SessionsScopeRulesAndJournalPerTag) {
  Scenario outage;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(rules {
             name: "outage"
             method: "GetWmtsUrlTemplate"
             behavior { fail { code: "UNAVAILABLE" } }
           })pb",
      &outage));
  ASSERT_TRUE(server_->script().LoadSession("ci-1", outage).ok());
  ASSERT_TRUE(server_->script().LoadSession("ci-2", outage).ok());
  auto get_wmts_in = [&](const std::string& session) {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(10)));
    context.AddMetadata(std::string(kSessionMetadataKey), session);
    dw::WmtsUrlTemplateResponse response;
    return workflows_->GetWmtsUrlTemplate(&context, dw::Empty(), &response)
        .error_code();
  };
  EXPECT_EQ(get_wmts_in("ci-1"), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(get_wmts_in("ci-2"), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(get_wmts_in("ci-3"), grpc::StatusCode::OK);
  EXPECT_TRUE(GetWmts().ok());

  Journal& journal = server_->journal();
  ASSERT_THAT(journal.SessionCalls("ci-1", "GetWmtsUrlTemplate"), SizeIs(1));
  EXPECT_EQ(journal.SessionCalls("ci-1")[0].rule(), "outage");
  EXPECT_EQ(journal.SessionCalls("")[0].rule(), "");
  EXPECT_EQ(journal.CountSessionCalls("ci-3", "GetWmtsUrlTemplate"), 1);

  server_->ResetSession("ci-1");
  EXPECT_THAT(journal.SessionCalls("ci-1"), IsEmpty());
  EXPECT_THAT(journal.Calls(), SizeIs(3));
  EXPECT_EQ(get_wmts_in("ci-1"), grpc::StatusCode::OK);
  EXPECT_EQ(get_wmts_in("ci-2"), grpc::StatusCode::UNAVAILABLE);
}

TEST_P(FakeWorkflowsServerTest, ResetForgetsScriptJournalAndData) {
  const std::string id = CreateJob();
  AddRule(R"pb(method: "GetWmtsUrlTemplate"
               behavior { fail { code: "INTERNAL" } })pb");
  server_->SetHealth("x", HealthCheckResponse::NOT_SERVING);
  server_->Reset();
  EXPECT_TRUE(GetWmts().ok());
  EXPECT_THAT(server_->journal().Calls(), SizeIs(1));
  EXPECT_EQ(server_->health().GetStatus("x"), std::nullopt);
  grpc::ClientContext context;
  dw::GetJobRequest request;
  request.set_id(id);
  dw::Job job;
  EXPECT_EQ(jobs_->GetJob(&context, request, &job).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_P(FakeWorkflowsServerTest, LoadScenarioIsAllOrNothing) {
  Scenario bad;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        name: "broken"
        health {
          service: "descarteslabs.workflows.JobAPI"
          status: "NOT_SERVING"
        }
        rules {
          method: "GetJbo"
          behavior { fail { code: "INTERNAL" } }
        }
      )pb",
      &bad));
  absl::Status status = server_->LoadScenario(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("broken"));
  EXPECT_THAT(status.message(), HasSubstr("GetJbo"));
  EXPECT_EQ(server_->health().GetStatus("descarteslabs.workflows.JobAPI"),
            std::nullopt);

  Scenario bad_health;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(health { service: "x" status: "SLEEPY" })pb", &bad_health));
  EXPECT_THAT(server_->LoadScenario(bad_health).message(),
              HasSubstr("\"SLEEPY\""));

  Scenario good;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        name: "degraded"
        health {
          service: "descarteslabs.workflows.JobAPI"
          status: "NOT_SERVING"
        }
        rules {
          method: "GetWmtsUrlTemplate"
          behavior { fail { code: "INTERNAL" } }
        }
        seed { workflows { id: "a@example.com:wf" } }
        job_progression { final_stage: FAILED error_code: ERROR_OOM }
      )pb",
      &good));
  ASSERT_TRUE(server_->LoadScenario(good).ok());
  EXPECT_EQ(server_->health().GetStatus("descarteslabs.workflows.JobAPI"),
            HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(GetWmts().error_code(), grpc::StatusCode::INTERNAL);
  grpc::ClientContext context;
  dw::GetWorkflowRequest request;
  request.set_id("a@example.com:wf");
  dw::Workflow workflow;
  EXPECT_TRUE(workflows_->GetWorkflow(&context, request, &workflow).ok());

  // A job created now fails in RUNNING once the clock passes three stages.
  const std::string id = CreateJob();
  clock_->AdvanceBy(absl::Seconds(10));
  grpc::ClientContext job_context;
  dw::GetJobRequest job_request;
  job_request.set_id(id);
  dw::Job job;
  ASSERT_TRUE(jobs_->GetJob(&job_context, job_request, &job).ok());
  EXPECT_EQ(job.state().stage(), dw::Job::FAILED);
  EXPECT_EQ(job.state().error().code(), dw::ERROR_OOM);
}

TEST_P(FakeWorkflowsServerTest, LoadScenarioSeedsXyzsGrantsAndSessionLogs) {
  Scenario seeded;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        seed {
          xyzs { id: "xyz-tiles" name: "tiles" serialized_graft: "{}" }
          xyzs { name: "unnamed" }
          access_grants {
            asset_name: "asset/workflow/a@example.com:wf"
            entity { type: "user-email" id: "b@example.com" }
            access: "workflows/role/viewer"
          }
          xyz_session_logs {
            xyz_id: "xyz-tiles"
            records {
              session_id: "s1"
              record { level: ERROR message: "tile failed" timestamp: 5 }
            }
            records {
              session_id: "s2"
              record { level: INFO message: "other session" }
            }
          }
        }
      )pb",
      &seeded));
  ASSERT_TRUE(server_->LoadScenario(seeded).ok());

  auto xyz_api = dw::XYZAPI::NewStub(channel_);
  grpc::ClientContext get_context;
  dw::GetXYZRequest get;
  get.set_xyz_id("xyz-tiles");
  dw::XYZ xyz;
  ASSERT_TRUE(xyz_api->GetXYZ(&get_context, get, &xyz).ok());
  EXPECT_EQ(xyz.name(), "tiles");
  // Filled in as CreateXYZ would have, for the default identity.
  EXPECT_EQ(xyz.user(), Identity().user);
  EXPECT_EQ(xyz.created_timestamp(), absl::ToUnixMillis(clock_->Now()));
  EXPECT_THAT(xyz.url_template(), HasSubstr("/xyz/xyz-tiles/{z}/{x}/{y}.png"));
  EXPECT_TRUE(xyz.has_expires_timestamp());

  // ListXYZ lists both as the caller's own, in seed order.
  grpc::ClientContext list_context;
  auto listed = xyz_api->ListXYZ(&list_context, dw::ListXYZRequest());
  std::vector<std::string> names;
  for (dw::XYZ each; listed->Read(&each);) names.push_back(each.name());
  EXPECT_TRUE(listed->Finish().ok());
  EXPECT_THAT(names, ElementsAre("tiles", "unnamed"));

  // Session logs: the stream sends the seeded record of session s1, then
  // stays open for more; cancel it once read.
  grpc::ClientContext logs_context;
  dw::GetXYZSessionLogsRequest logs_request;
  logs_request.set_xyz_id("xyz-tiles");
  logs_request.set_session_id("s1");
  auto logs = xyz_api->GetXYZSessionLogs(&logs_context, logs_request);
  dw::XYZLogRecord log;
  ASSERT_TRUE(logs->Read(&log));
  EXPECT_EQ(log.record().message(), "tile failed");
  EXPECT_EQ(log.record().timestamp(), 5);
  logs_context.TryCancel();
  while (logs->Read(&log)) ADD_FAILURE() << "unexpected " << log.session_id();
  EXPECT_EQ(logs->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The handler notices the cancel within kDoneCheckInterval.
  ASSERT_TRUE(
      server_->journal().WaitForCalls("GetXYZSessionLogs", 1, kPrompt).ok());

  auto grants =
      descarteslabs::discover::v0alpha::AccessGrantApi::NewStub(channel_);
  grpc::ClientContext grants_context;
  descarteslabs::discover::v0alpha::ListAccessGrantsRequest grants_request;
  grants_request.set_asset_name("asset/workflow/a@example.com:wf");
  descarteslabs::discover::v0alpha::ListAccessGrantsResponse grants_response;
  ASSERT_TRUE(
      grants
          ->ListAccessGrants(&grants_context, grants_request, &grants_response)
          .ok());
  ASSERT_EQ(grants_response.access_grants_size(), 1);
  EXPECT_EQ(grants_response.access_grants(0).entity().id(), "b@example.com");
  EXPECT_TRUE(grants_response.access_grants(0).has_create_time());
}

TEST_P(FakeWorkflowsServerTest, BadSeedChangesNothing) {
  Scenario bad;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(
        name: "bad_seed"
        seed {
          xyzs { id: "xyz-ok" }
          xyz_session_logs { xyz_id: "xyz-elsewhere" }
        }
      )pb",
      &bad));
  absl::Status status = server_->LoadScenario(bad);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("scenario \"bad_seed\": seed.xyz_session_logs[0]: "
                        "xyz_id \"xyz-elsewhere\" is not the id of an XYZ "
                        "in seed.xyzs"));
  EXPECT_EQ(server_->in_memory_backend()->FindXYZ("xyz-ok"), std::nullopt);
}

// Zero stage_duration is instant: a created job is SUCCEEDED at once (its
// history still has every stage). CANCELLED plans end without an error.
TEST_P(FakeWorkflowsServerTest, ZeroStageDurationAndCancelledPlans) {
  Scenario instant;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(job_progression { stage_duration {} })pb", &instant));
  ASSERT_TRUE(server_->LoadScenario(instant).ok());
  const std::string id = CreateJob();
  grpc::ClientContext watch_context;
  dw::WatchJobRequest watch;
  watch.set_id(id);
  auto states = jobs_->WatchJob(&watch_context, watch);
  std::vector<dw::Job::Stage> stages;
  for (dw::Job::State state; states->Read(&state);) {
    stages.push_back(state.stage());
  }
  EXPECT_TRUE(states->Finish().ok());
  EXPECT_THAT(stages, ElementsAre(dw::Job::SUCCEEDED));
  EXPECT_THAT(server_->in_memory_backend()->GetJobHistory(id), SizeIs(5));

  Scenario cancelled;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      R"pb(job_progression {
             stage_duration { seconds: 1 }
             final_stage: CANCELLED
             fail_at_stage: QUEUED
           })pb",
      &cancelled));
  ASSERT_TRUE(server_->LoadScenario(cancelled).ok());
  const std::string cancelled_id = CreateJob();
  clock_->AdvanceBy(absl::Seconds(1));
  std::optional<dw::Job::State> state =
      server_->in_memory_backend()->GetJobState(cancelled_id);
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->stage(), dw::Job::CANCELLED);
  EXPECT_FALSE(state->has_error());

  Scenario negative;
  negative.mutable_job_progression()->mutable_stage_duration()->set_nanos(-1);
  EXPECT_THAT(server_->LoadScenario(negative).message(),
              HasSubstr("stage_duration must not be negative"));
  Scenario cancelled_with_error;
  cancelled_with_error.mutable_job_progression()->set_final_stage(
      dw::Job::CANCELLED);
  cancelled_with_error.mutable_job_progression()->set_error_message("x");
  EXPECT_THAT(server_->LoadScenario(cancelled_with_error).message(),
              HasSubstr("apply to FAILED only"));
}

// --- Not parameterised: options, transports, several servers. ---

TEST(FakeWorkflowsServerOptionsTest, BadOptionsAreClearErrors) {
  FakeServerOptions bad_address;
  bad_address.address = "localhost";
  absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> server =
      FakeWorkflowsServer::Start(bad_address);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("\"localhost\""));

  absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> first =
      FakeWorkflowsServer::Start({});
  ASSERT_TRUE(first.ok()) << first.status();
  FakeServerOptions same_port;
  same_port.address = (*first)->address();
  server = FakeWorkflowsServer::Start(same_port);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(server.status().message(), HasSubstr((*first)->address()));
  EXPECT_THAT(server.status().message(), HasSubstr("in use"));

  FakeServerOptions bad_pem;
  bad_pem.transport = Transport::kTls;
  bad_pem.tls.cert_pem = "not a certificate";
  bad_pem.tls.key_pem = "not a key";
  server = FakeWorkflowsServer::Start(bad_pem);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("tls.cert_pem"));

  FakeServerOptions tls_without_tls;
  tls_without_tls.tls.cert_pem = "x";
  EXPECT_EQ(FakeWorkflowsServer::Start(tls_without_tls).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FakeWorkflowsServerOptionsTest, MessageSizeLimitsApply) {
  FakeServerOptions options;
  options.max_receive_message_size = 1024;
  auto server = FakeWorkflowsServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = dw::JobAPI::NewStub((*server)->CreateChannel());
  grpc::ClientContext context;
  dw::CreateJobRequest request;
  request.set_serialized_graft(std::string(4096, 'x'));
  dw::Job job;
  EXPECT_EQ(stub->CreateJob(&context, request, &job).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(FakeWorkflowsServerOptionsTest, TwoServersInOneProcessAreIndependent) {
  auto a = FakeWorkflowsServer::Start({});
  auto b = FakeWorkflowsServer::Start({});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)->port(), (*b)->port());
  EXPECT_NE((*a)->port(), 0);
  Rule rule = ParseRule(R"pb(method: "GetWmtsUrlTemplate"
                             behavior { fail { code: "INTERNAL" } })pb");
  ASSERT_TRUE((*a)->script().AddRule(rule).ok());
  (*b)->SetHealth("", HealthCheckResponse::NOT_SERVING);

  auto call = [](FakeWorkflowsServer& server) {
    auto stub = dw::WorkflowAPI::NewStub(server.CreateChannel());
    grpc::ClientContext context;
    dw::WmtsUrlTemplateResponse response;
    return stub->GetWmtsUrlTemplate(&context, dw::Empty(), &response)
        .error_code();
  };
  EXPECT_EQ(call(**a), grpc::StatusCode::INTERNAL);
  EXPECT_EQ(call(**b), grpc::StatusCode::OK);
  EXPECT_EQ((*a)->health().GetStatus(""), HealthCheckResponse::SERVING);
  EXPECT_THAT((*a)->journal().Calls(), SizeIs(1));
  EXPECT_THAT((*b)->journal().Calls(), SizeIs(1));
  (*a)->Shutdown();
  EXPECT_EQ(call(**b), grpc::StatusCode::OK);
}

TEST(FakeWorkflowsServerOptionsTest, TlsServerRecordsTransport) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  CertificateOptions server_cert;
  server_cert.dns_names = {"localhost"};
  server_cert.ip_addresses = {"127.0.0.1"};
  absl::StatusOr<CertificateAndKey> issued = ca->Issue(server_cert);
  ASSERT_TRUE(issued.ok()) << issued.status();

  FakeServerOptions options;
  options.transport = Transport::kTls;
  options.tls.cert_pem = issued->cert_pem;
  options.tls.key_pem = issued->key_pem;
  auto server = FakeWorkflowsServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();

  ChannelOptions channel_options;
  channel_options.root_pem = ca->ca_pem();
  auto stub =
      dw::WorkflowAPI::NewStub((*server)->CreateChannel(channel_options));
  grpc::ClientContext context;
  context.set_credentials(grpc::AccessTokenCredentials("tls-token"));
  dw::WmtsUrlTemplateResponse response;
  grpc::Status status =
      stub->GetWmtsUrlTemplate(&context, dw::Empty(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<RecordedCall> calls = (*server)->journal().Calls();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].identity().transport_security_type(), "ssl");
  EXPECT_TRUE(calls[0].identity().has_bearer_token());
  EXPECT_EQ(calls[0].identity().x509_common_name(), "");

  // A client that does not trust the CA cannot connect.
  auto untrusted = dw::WorkflowAPI::NewStub((*server)->CreateChannel());
  grpc::ClientContext untrusted_context;
  untrusted_context.set_deadline(In(absl::Seconds(5)));
  EXPECT_EQ(
      untrusted->GetWmtsUrlTemplate(&untrusted_context, dw::Empty(), &response)
          .error_code(),
      grpc::StatusCode::UNAVAILABLE);
}

TEST(FakeWorkflowsServerOptionsTest, MutualTlsRequiresAndRecordsClientCert) {
  absl::StatusOr<CertificateAuthority> ca = CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  CertificateOptions server_cert;
  server_cert.dns_names = {"localhost"};
  server_cert.ip_addresses = {"127.0.0.1"};
  CertificateOptions client_cert;
  client_cert.common_name = "test-client";
  client_cert.dns_names = {"client.example.com"};
  client_cert.usage = CertificateUsage::kClient;
  absl::StatusOr<CertificateAndKey> server_pair = ca->Issue(server_cert);
  absl::StatusOr<CertificateAndKey> client_pair = ca->Issue(client_cert);
  ASSERT_TRUE(server_pair.ok() && client_pair.ok());

  FakeServerOptions options;
  options.transport = Transport::kTls;
  options.tls.cert_pem = server_pair->cert_pem;
  options.tls.key_pem = server_pair->key_pem;
  options.tls.client_ca_pem = ca->ca_pem();
  auto server = FakeWorkflowsServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();

  ChannelOptions with_cert;
  with_cert.root_pem = ca->ca_pem();
  with_cert.client_cert_pem = client_pair->cert_pem;
  with_cert.client_key_pem = client_pair->key_pem;
  auto stub = dw::WorkflowAPI::NewStub((*server)->CreateChannel(with_cert));
  grpc::ClientContext context;
  dw::WmtsUrlTemplateResponse response;
  grpc::Status status =
      stub->GetWmtsUrlTemplate(&context, dw::Empty(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<RecordedCall> calls = (*server)->journal().Calls();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].identity().x509_common_name(), "test-client");
  EXPECT_THAT(calls[0].identity().x509_subject_alternative_names(),
              testing::Contains("client.example.com"));

  ChannelOptions without_cert;
  without_cert.root_pem = ca->ca_pem();
  auto anonymous =
      dw::WorkflowAPI::NewStub((*server)->CreateChannel(without_cert));
  grpc::ClientContext anonymous_context;
  anonymous_context.set_deadline(In(absl::Seconds(5)));
  EXPECT_EQ(
      anonymous->GetWmtsUrlTemplate(&anonymous_context, dw::Empty(), &response)
          .error_code(),
      grpc::StatusCode::UNAVAILABLE);
}

TEST(FakeWorkflowsServerOptionsTest, LocalCredentialsCarryCallCredentials) {
  FakeServerOptions options;
  options.transport = Transport::kLocal;
  auto server = FakeWorkflowsServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  AuthPolicy policy;
  policy.set_require_bearer_token(true);
  policy.add_valid_tokens("local-token");
  (*server)->script().SetAuthPolicy(policy);

  auto stub = dw::WorkflowAPI::NewStub((*server)->CreateChannel());
  grpc::ClientContext context;
  context.set_credentials(grpc::AccessTokenCredentials("local-token"));
  dw::WmtsUrlTemplateResponse response;
  grpc::Status status =
      stub->GetWmtsUrlTemplate(&context, dw::Empty(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<RecordedCall> calls = (*server)->journal().Calls();
  ASSERT_THAT(calls, SizeIs(1));
  EXPECT_EQ(calls[0].identity().transport_security_type(), "local");
  EXPECT_TRUE(calls[0].identity().has_bearer_token());
}

TEST(FakeWorkflowsServerOptionsTest, InProcessStartAndStopIsFast) {
  constexpr int kRounds = 20;
  absl::Duration total;
  for (int i = 0; i < kRounds; ++i) {
    const absl::Time start = absl::Now();
    FakeServerOptions options;
    options.transport = Transport::kInProcess;
    auto server = FakeWorkflowsServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    (*server)->Shutdown();
    server->reset();
    total += absl::Now() - start;
  }
  const absl::Duration mean = total / kRounds;
  std::cout << "In-process start+stop, mean of " << kRounds << ": "
            << absl::FormatDuration(mean) << "\n";
  // The target is 5 ms; the bound is loose for sanitizers and busy machines.
  EXPECT_LT(mean, absl::Milliseconds(100));
}

// The same handler (the backend's GetWmtsUrlTemplate) in a bare grpc++
// service, to measure what the fake's call path adds.
class BareWorkflowService final : public dw::WorkflowAPI::Service {
 public:
  explicit BareWorkflowService(Backend* backend) : backend_(backend) {}
  grpc::Status GetWmtsUrlTemplate(
      grpc::ServerContext* context, const dw::Empty* request,
      dw::WmtsUrlTemplateResponse* response) override {
    FakeCallContext call(clock_);
    return backend_->GetWmtsUrlTemplate(&call, *request, response);
  }

 private:
  Backend* const backend_;
  std::shared_ptr<Clock> clock_ = Clock::Real();
};

absl::Duration TimeCalls(dw::WorkflowAPI::Stub& stub, int n) {
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext context;
    dw::WmtsUrlTemplateResponse response;
    grpc::Status status =
        stub.GetWmtsUrlTemplate(&context, dw::Empty(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
  }
  return (absl::Now() - start) / n;
}

TEST(FakeWorkflowsServerOptionsTest, PassThroughOverheadVersusBareService) {
  for (bool journal : {true, false}) {
    FakeServerOptions options;
    options.transport = Transport::kInProcess;
    options.journal.enabled = journal;
    auto server = FakeWorkflowsServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    BareWorkflowService bare_service(&(*server)->backend());
    grpc::ServerBuilder builder;
    builder.RegisterService(&bare_service);
    std::unique_ptr<grpc::Server> bare = builder.BuildAndStart();
    auto fake_stub = dw::WorkflowAPI::NewStub((*server)->InProcessChannel());
    auto bare_stub = dw::WorkflowAPI::NewStub(
        bare->InProcessChannel(grpc::ChannelArguments()));
    TimeCalls(*fake_stub, 100);  // Warm up both.
    TimeCalls(*bare_stub, 100);
    // The machine is shared: the fastest of several rounds is the figure
    // least disturbed by other processes.
    absl::Duration fake_time = absl::InfiniteDuration();
    absl::Duration bare_time = absl::InfiniteDuration();
    for (int round = 0; round < 5; ++round) {
      fake_time = std::min(fake_time, TimeCalls(*fake_stub, 100));
      bare_time = std::min(bare_time, TimeCalls(*bare_stub, 100));
    }
    const double ratio = absl::FDivDuration(fake_time, bare_time);
    std::cout << "Unary pass-through, in-process, journal "
              << (journal ? "on" : "off") << ": fake "
              << absl::FormatDuration(fake_time) << ", bare grpc++ "
              << absl::FormatDuration(bare_time) << ", ratio " << ratio << "\n";
    // No bound on the ratio here: timing on a shared machine (and under
    // sanitizers) is too noisy to fail a test on; bench/ owns the target.
    EXPECT_EQ((*server)->journal().CountCalls("GetWmtsUrlTemplate"), 600);
    bare->Shutdown();
  }
}

}  // namespace
}  // namespace fake
}  // namespace workflows
