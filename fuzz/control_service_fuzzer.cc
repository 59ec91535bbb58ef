// libFuzzer target: the fake server's control service (control.proto),
// called directly against an in-process FakeWorkflowsServer.
//
// The input is a sequence of operations, so that the fuzzer can reach state
// that only a series of calls builds (a scenario loaded, calls journaled,
// then waited on):
//
//   op      := selector:u8  length:u16 (little-endian)  payload[length]
//
// The payload is the serialized request message of the selected operation
// (see kOps below); a payload that does not parse as one is still used, as
// an empty request plus whatever parsed. Operations 7-9 are Workflows calls
// through the server's in-process channel, which fill the journal. Inputs are
// kept fast: WaitForCalls waits at most kMaxWait and Workflows calls have a
// kCallDeadline deadline, so scripted hangs and delays end quickly.
// AdvanceClock gets any duration (the simulated clock costs no real time):
// out-of-range ones must be refused, and a clock near the year 9999 must not
// make job progression run away. Scenario text is parsed with a 16 KiB cap
// (kFuzzParseLimits) so that inputs of a few KiB, within run_fuzzers.sh's
// -max_len, reach it.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/control.grpc.pb.h"
#include "fake_server/control_service.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/text_limits.h"
#include "fuzz/fuzz_check.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "proto/job.grpc.pb.h"

namespace workflows {
namespace fake {
namespace {

using ::descarteslabs::workflows::CreateJobRequest;
using ::descarteslabs::workflows::GetJobRequest;
using ::descarteslabs::workflows::Job;
using ::descarteslabs::workflows::JobAPI;
using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;

constexpr int kMaxOps = 16;
constexpr int64_t kMaxWaitMs = 5;
constexpr auto kCallDeadline = std::chrono::milliseconds(20);

// A lowered size cap (the default is 1 MiB), reachable within -max_len.
constexpr TextParseLimits kFuzzParseLimits = {.max_depth = 100,
                                              .max_bytes = 16 << 10};

// The selectors, modulo kNumOps.
enum Op : uint8_t {
  kLoadScenario,
  kReset,
  kSetHealth,
  kGetJournal,
  kClearJournal,
  kWaitForCalls,
  kAdvanceClock,
  kHealthCheck,
  kGetJob,
  kCreateJob,
  kIsLocalPeer,
  kNumOps,
};

// One server, clock and control service for the whole run (starting a
// server per input would dominate); each input starts with Reset().
struct Harness {
  std::shared_ptr<SimulatedClock> clock = std::make_shared<SimulatedClock>();
  std::unique_ptr<FakeWorkflowsServer> server;
  std::unique_ptr<ControlService> control;
  std::unique_ptr<Health::Stub> health;
  std::unique_ptr<JobAPI::Stub> jobs;

  Harness() {
    SetDefaultTextParseLimits(kFuzzParseLimits);
    FakeServerOptions options;
    options.transport = Transport::kInProcess;
    options.clock = clock;
    absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> started =
        FakeWorkflowsServer::Start(std::move(options));
    FUZZ_CHECK(started.ok(), started.status().ToString());
    server = *std::move(started);
    // A directly constructed ServerContext has no peer; the peer check
    // (IsLocalPeer) is fuzzed on its own below.
    control = std::make_unique<ControlService>(
        ControlServiceOptions{.allow_remote = true, .clock = clock});
    control->Attach(server.get());
    std::shared_ptr<grpc::Channel> channel = server->InProcessChannel();
    health = Health::NewStub(channel);
    jobs = JobAPI::NewStub(channel);
  }
};

Harness& GetHarness() {
  static Harness* const harness = new Harness();  // Lives for the whole run.
  return *harness;
}

// FUZZ_VERBOSE=1 prints each operation's status, to see what an input does.
bool Verbose() {
  static const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  return verbose;
}

// `status` of a control call (`scripted` false: its errors must say what is
// wrong) or of a Workflows call (a script may fail it with any message).
void CheckStatus(const grpc::Status& status, bool scripted = false) {
  if (Verbose()) {
    std::cerr << "  -> " << status.error_code() << " "
              << status.error_message().substr(0, 200) << "\n";
  }
  const int code = static_cast<int>(status.error_code());
  FUZZ_CHECK(code >= 0 && code <= 16, "invalid status code ", code);
  FUZZ_CHECK(scripted || status.ok() || !status.error_message().empty(),
             "error without a message, code ", code);
}

template <typename Request>
Request Parse(absl::string_view payload) {
  Request request;
  // Partial parses are kept: the service must cope with any field values.
  request.ParsePartialFromArray(payload.data(), payload.size());
  return request;
}

void RunOp(Harness& h, uint8_t selector, absl::string_view payload) {
  grpc::ServerContext context;
  if (Verbose()) {
    std::cerr << "op " << selector % kNumOps << ", " << payload.size()
              << " bytes\n";
  }
  switch (static_cast<Op>(selector % kNumOps)) {
    case kLoadScenario: {
      const auto request = Parse<LoadScenarioRequest>(payload);
      LoadScenarioResponse response;
      CheckStatus(h.control->LoadScenario(&context, &request, &response));
      break;
    }
    case kReset: {
      const ResetRequest request;
      ResetResponse response;
      CheckStatus(h.control->Reset(&context, &request, &response));
      break;
    }
    case kSetHealth: {
      const auto request = Parse<SetHealthRequest>(payload);
      SetHealthResponse response;
      const grpc::Status status =
          h.control->SetHealth(&context, &request, &response);
      CheckStatus(status);
      const absl::string_view s = request.status();
      FUZZ_CHECK(status.ok() ==
                     (s == "UNKNOWN" || s == "SERVING" || s == "NOT_SERVING"),
                 "SetHealth(\"", s, "\") returned ", status.error_message());
      break;
    }
    case kGetJournal: {
      const auto request = Parse<GetJournalRequest>(payload);
      GetJournalResponse response;
      CheckStatus(h.control->GetJournal(&context, &request, &response));
      break;
    }
    case kClearJournal: {
      const ClearJournalRequest request;
      ClearJournalResponse response;
      CheckStatus(h.control->ClearJournal(&context, &request, &response));
      FUZZ_CHECK(h.server->journal().Dump().calls_size() == 0,
                 "ClearJournal left calls");
      break;
    }
    case kWaitForCalls: {
      auto request = Parse<WaitForCallsRequest>(payload);
      // No real waits: keep the sign (negative is an error to exercise),
      // bound the magnitude.
      google::protobuf::Duration* timeout = request.mutable_timeout();
      const bool negative = timeout->seconds() < 0 || timeout->nanos() < 0;
      const int64_t ms =
          timeout->seconds() != 0
              ? kMaxWaitMs
              : std::min<int64_t>(std::abs(timeout->nanos() / 1000000),
                                  kMaxWaitMs);
      timeout->set_seconds(0);
      timeout->set_nanos(static_cast<int32_t>((negative ? -ms : ms) * 1000000));
      WaitForCallsResponse response;
      CheckStatus(h.control->WaitForCalls(&context, &request, &response));
      break;
    }
    case kAdvanceClock: {
      auto request = Parse<AdvanceClockRequest>(payload);
      const absl::Time before = h.clock->Now();
      AdvanceClockResponse response;
      const grpc::Status status =
          h.control->AdvanceClock(&context, &request, &response);
      CheckStatus(status);
      FUZZ_CHECK(
          status.ok() ||
              status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
              status.error_code() == grpc::StatusCode::OUT_OF_RANGE,
          "AdvanceClock failed with ", status.error_code());
      if (status.ok()) {
        const absl::Time now = absl::FromUnixSeconds(response.now().seconds()) +
                               absl::Nanoseconds(response.now().nanos());
        FUZZ_CHECK(now >= before, "AdvanceClock went backwards");
      }
      break;
    }
    case kHealthCheck: {
      const auto request = Parse<HealthCheckRequest>(payload);
      grpc::ClientContext call;
      call.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
      HealthCheckResponse response;
      CheckStatus(h.health->Check(&call, request, &response), true);
      break;
    }
    case kGetJob: {
      const auto request = Parse<GetJobRequest>(payload);
      grpc::ClientContext call;
      call.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
      Job response;
      CheckStatus(h.jobs->GetJob(&call, request, &response), true);
      break;
    }
    case kCreateJob: {
      const auto request = Parse<CreateJobRequest>(payload);
      grpc::ClientContext call;
      call.set_deadline(std::chrono::system_clock::now() + kCallDeadline);
      Job response;
      CheckStatus(h.jobs->CreateJob(&call, request, &response), true);
      break;
    }
    case kIsLocalPeer:
      ControlService::IsLocalPeer(payload);
      break;
    case kNumOps:
      break;
  }
}

void FuzzControl(absl::string_view input) {
  Harness& h = GetHarness();
  h.server->Reset();
  for (int i = 0; i < kMaxOps && !input.empty(); ++i) {
    const uint8_t selector = static_cast<uint8_t>(input[0]);
    input.remove_prefix(1);
    size_t length = 0;
    if (input.size() >= 2) {
      length = static_cast<uint8_t>(input[0]) |
               (static_cast<size_t>(static_cast<uint8_t>(input[1])) << 8);
      input.remove_prefix(2);
    } else {
      length = input.size();
    }
    length = std::min(length, input.size());
    RunOp(h, selector, input.substr(0, length));
    input.remove_prefix(length);
  }
}

}  // namespace
}  // namespace fake
}  // namespace workflows

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  workflows::fake::FuzzControl(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
