// Stress test of the fake Workflows server: 64 client threads send a mix of
// unary and streaming calls while another thread rescripts the server
// (AddRule, Load, Clear) and a third flips health; the server restarts
// between rounds on in-process, plaintext TCP and TLS transports.
//
// It asserts, deterministically (no timing assertions):
//  - every call ends with a status from the allowed set of its method;
//  - per round, the journal holds exactly the calls the clients sent: per
//    method and per status code, the journal's counts equal the clients';
//  - after the last shutdown, no file descriptor or thread is leaked compared
//    with a baseline taken after warm-up rounds (gRPC keeps some global
//    threads alive after its first server, so the baseline is not the start).

#include <dirent.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/certificates.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/in_memory_backend.h"
#include "fake_server/journal.h"
#include "fake_server/scenario.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/job.grpc.pb.h"
#include "testing/matchers.h"

namespace workflows {
namespace {

namespace dw = descarteslabs::workflows;
namespace hv1 = grpc::health::v1;
using fake::FakeServerOptions;
using fake::FakeWorkflowsServer;
using fake::Transport;

constexpr int kClientThreads = 64;
// ThreadSanitizer slows gRPC ~25x; fewer calls per round keep the same mix
// of faults and restarts within the test timeout.
#if defined(__SANITIZE_THREAD__)
constexpr int kCallsPerThread = 30;
#else
constexpr int kCallsPerThread = 120;
#endif
constexpr int kWarmupCallsPerThread = 4;

// Methods the clients call, full names as the journal records them.
constexpr char kGetJob[] = "/descarteslabs.workflows.JobAPI/GetJob";
constexpr char kWatchJob[] = "/descarteslabs.workflows.JobAPI/WatchJob";
constexpr char kListJobs[] = "/descarteslabs.workflows.JobAPI/ListJobs";
constexpr char kCheck[] = "/grpc.health.v1.Health/Check";

// What a call may end with while rules come and go (see Rescript()):
// pass-through answers OK; the scripted faults use exactly these codes.
const std::map<std::string, std::set<grpc::StatusCode>>& AllowedStatuses() {
  static const auto* allowed =
      new std::map<std::string, std::set<grpc::StatusCode>>{
          {kGetJob, {grpc::StatusCode::OK, grpc::StatusCode::UNAVAILABLE}},
          {kWatchJob, {grpc::StatusCode::OK, grpc::StatusCode::ABORTED}},
          {kListJobs,
           {grpc::StatusCode::OK, grpc::StatusCode::RESOURCE_EXHAUSTED}},
          {kCheck, {grpc::StatusCode::OK, grpc::StatusCode::UNAVAILABLE}},
      };
  return *allowed;
}

int CountEntries(const char* dir) {
  DIR* d = opendir(dir);
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* entry = readdir(d)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - (std::string(dir) == "/proc/self/fd" ? 1 : 0);  // opendir's fd
}
int OpenFds() { return CountEntries("/proc/self/fd"); }
int Threads() { return CountEntries("/proc/self/task"); }

// Waits (bounded) for fds and threads to come back to the baseline: gRPC
// closes sockets and ends threads asynchronously after Shutdown().
bool SettlesTo(int fds, int threads, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (OpenFds() > fds || Threads() > threads) {
    if (absl::Now() >= end) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

const fake::CertificateAuthority& Ca() {
  static const auto* ca = new fake::CertificateAuthority(
      fake::CertificateAuthority::Create().value());
  return *ca;
}

fake::Rule StreamRule(int messages, bool fail) {
  fake::Rule rule;
  rule.set_method("WatchJob");
  fake::StreamScript* stream = rule.mutable_behavior()->mutable_stream();
  for (int i = 0; i < messages; ++i) {
    dw::Job::State state;
    state.set_stage(dw::Job::RUNNING);
    state.set_timestamp(i);
    stream->add_messages()->PackFrom(state);
  }
  if (fail) {
    stream->mutable_status()->set_code("ABORTED");
    stream->mutable_status()->set_message("scripted stream break");
  }
  return rule;
}

fake::Rule FailRule(const std::string& method, const std::string& code,
                    double probability) {
  fake::Rule rule;
  rule.set_method(method);
  rule.mutable_behavior()->mutable_fail()->set_code(code);
  rule.mutable_behavior()->mutable_fail()->set_message("scripted");
  if (probability > 0) rule.set_probability(probability);
  return rule;
}

// Counts per method and status code, as seen by clients or the journal.
using Tally = std::map<std::string, std::map<std::string, int64_t>>;

struct RoundResult {
  Tally clients;
  std::vector<std::string> unexpected;  // calls with a disallowed status
};

class StressTest : public ::testing::Test {
 protected:
  // One round: start a server on `transport`, hammer it, check the journal,
  // shut it down.
  void RunRound(Transport transport, int calls_per_thread, int round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    FakeServerOptions options;
    options.transport = transport;
    options.clock = std::make_shared<SimulatedClock>();
    options.random_seed = 1000 + round;
    fake::ChannelOptions channel_options;
    if (transport == Transport::kTls) {
      fake::CertificateOptions cert_options;
      cert_options.dns_names = {"localhost"};
      cert_options.ip_addresses = {"127.0.0.1"};
      absl::StatusOr<fake::CertificateAndKey> cert = Ca().Issue(cert_options);
      ASSERT_TRUE(cert.ok()) << cert.status();
      options.tls.cert_pem = cert->cert_pem;
      options.tls.key_pem = cert->key_pem;
      channel_options.root_pem = Ca().ca_pem();
      channel_options.target_name_override = "localhost";
    }
    absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> started =
        FakeWorkflowsServer::Start(std::move(options));
    ASSERT_TRUE(started.ok()) << started.status();
    std::unique_ptr<FakeWorkflowsServer> server = *std::move(started);

    // Finished jobs, so in-memory WatchJob ends at once (OK) on any clock.
    std::vector<std::string> job_ids;
    for (int i = 0; i < 4; ++i) {
      dw::Job job;
      job.set_serialized_graft("{}");
      job.mutable_state()->set_stage(dw::Job::SUCCEEDED);
      job_ids.push_back(server->in_memory_backend()->PutJob(job));
    }

    absl::Notification clients_done;
    std::thread rescripter([&] { Rescript(*server, clients_done); });
    std::thread health_flipper([&] {
      int i = 0;
      while (!clients_done.HasBeenNotified()) {
        server->SetHealth("", i++ % 2 == 0
                                  ? hv1::HealthCheckResponse::NOT_SERVING
                                  : hv1::HealthCheckResponse::SERVING);
        clients_done.WaitForNotificationWithTimeout(absl::Microseconds(200));
      }
    });

    absl::Mutex mu;
    RoundResult result;
    std::vector<std::thread> clients;
    clients.reserve(kClientThreads);
    for (int t = 0; t < kClientThreads; ++t) {
      clients.emplace_back([&, t] {
        RoundResult mine;
        std::shared_ptr<grpc::Channel> channel =
            server->CreateChannel(channel_options);
        auto jobs = dw::JobAPI::NewStub(channel);
        auto health = hv1::Health::NewStub(channel);
        for (int i = 0; i < calls_per_thread; ++i) {
          const std::string& job_id = job_ids[(t + i) % job_ids.size()];
          std::string method;
          grpc::Status status;
          grpc::ClientContext context;
          switch ((t + i) % 4) {
            case 0: {
              method = kGetJob;
              dw::GetJobRequest request;
              request.set_id(job_id);
              dw::Job job;
              status = jobs->GetJob(&context, request, &job);
              break;
            }
            case 1: {
              method = kWatchJob;
              dw::WatchJobRequest request;
              request.set_id(job_id);
              auto reader = jobs->WatchJob(&context, request);
              dw::Job::State state;
              while (reader->Read(&state)) {
              }
              status = reader->Finish();
              break;
            }
            case 2: {
              method = kListJobs;
              dw::ListJobsRequest request;
              auto reader = jobs->ListJobs(&context, request);
              dw::Job job;
              while (reader->Read(&job)) {
              }
              status = reader->Finish();
              break;
            }
            default: {
              method = kCheck;
              hv1::HealthCheckRequest request;
              hv1::HealthCheckResponse response;
              status = health->Check(&context, request, &response);
              if (status.ok() &&
                  response.status() != hv1::HealthCheckResponse::SERVING &&
                  response.status() != hv1::HealthCheckResponse::NOT_SERVING) {
                mine.unexpected.push_back(
                    absl::StrCat("Check answered ", response.status()));
              }
              break;
            }
          }
          mine.clients[method][fake::StatusCodeName(status.error_code())]++;
          if (AllowedStatuses().at(method).count(status.error_code()) == 0) {
            mine.unexpected.push_back(absl::StrCat(
                method, " ended ", fake::StatusCodeName(status.error_code()),
                ": ", status.error_message()));
          }
        }
        absl::MutexLock lock(&mu);
        for (const auto& [method, codes] : mine.clients) {
          for (const auto& [code, n] : codes) result.clients[method][code] += n;
        }
        for (std::string& u : mine.unexpected) {
          result.unexpected.push_back(std::move(u));
        }
      });
    }
    for (std::thread& client : clients) client.join();
    clients_done.Notify();
    rescripter.join();
    health_flipper.join();

    EXPECT_THAT(result.unexpected, ::testing::IsEmpty());

    // Every call the clients saw end has ended on the server too.
    ASSERT_THAT(server->journal().WaitUntilIdle(absl::Seconds(30)),
                ::workflows::testing::IsOk());
    Tally journal;
    int64_t total = 0;
    for (const fake::RecordedCall& call : server->journal().Calls()) {
      journal[call.method()][call.status_code()]++;
      ++total;
    }
    EXPECT_EQ(journal, result.clients);
    std::cerr << "round " << round << ":";
    for (const auto& [method, codes] : result.clients) {
      for (const auto& [code, n] : codes) {
        std::cerr << " " << method.substr(method.rfind('/') + 1) << "/" << code
                  << "=" << n;
      }
    }
    std::cerr << "\n";
    EXPECT_EQ(total, int64_t{kClientThreads} * calls_per_thread);
    EXPECT_EQ(server->journal().dropped_calls(), 0u);
    for (const auto& [method, codes] : result.clients) {
      int64_t sent = 0;
      for (const auto& [code, n] : codes) sent += n;
      EXPECT_EQ(server->journal().CountCalls(method), sent) << method;
    }

    server->Shutdown();
    server.reset();
  }

  // Rescripts `server` until `done`: adds fault rules, loads scenarios and
  // clears, so calls race with every kind of script change.
  static void Rescript(FakeWorkflowsServer& server,
                       const absl::Notification& done) {
    int step = 0;
    while (!done.HasBeenNotified()) {
      switch (step++ % 5) {
        case 0:
          EXPECT_THAT(
              server.script().AddRule(FailRule("GetJob", "UNAVAILABLE", 0.5)),
              ::workflows::testing::IsOk());
          break;
        case 1:
          EXPECT_THAT(server.script().AddRule(StreamRule(3, /*fail=*/true)),
                      ::workflows::testing::IsOk());
          break;
        case 2: {
          fake::Scenario scenario;
          *scenario.add_rules() = FailRule("ListJobs", "RESOURCE_EXHAUSTED", 0);
          *scenario.add_rules() = StreamRule(5, /*fail=*/false);
          *scenario.add_rules() = FailRule("Check", "UNAVAILABLE", 0.3);
          EXPECT_THAT(server.script().Load(scenario),
                      ::workflows::testing::IsOk());
          break;
        }
        case 3:
          EXPECT_THAT(server.script().AddRule(StreamRule(0, false)),
                      ::workflows::testing::IsOk());
          break;
        default:
          server.script().Clear();
          break;
      }
      done.WaitForNotificationWithTimeout(absl::Microseconds(300));
    }
  }
};

TEST_F(StressTest, ConcurrentCallsRescriptingHealthFlipsAndRestarts) {
  const Transport transports[] = {Transport::kInsecureTcp,
                                  Transport::kInProcess, Transport::kTls};
  // Warm-up: one small round per transport, so that gRPC's process-wide
  // state (executors, resolvers, TLS) exists before the baseline.
  int round = 0;
  for (Transport transport : transports) {
    RunRound(transport, kWarmupCallsPerThread, round++);
    if (HasFatalFailure()) return;
  }
  const int baseline_fds = OpenFds();
  const int baseline_threads = Threads();

  for (int i = 0; i < 6; ++i) {
    RunRound(transports[i % 3], kCallsPerThread, round++);
    if (HasFatalFailure()) return;
  }

  std::cerr << "baseline after warm-up: " << baseline_fds << " fds, "
            << baseline_threads << " threads\n";
  EXPECT_TRUE(SettlesTo(baseline_fds, baseline_threads, absl::Seconds(20)))
      << "after shutdown: " << OpenFds() << " fds (baseline " << baseline_fds
      << "), " << Threads() << " threads (baseline " << baseline_threads << ")";
  std::cerr << "after the last shutdown: " << OpenFds() << " fds, " << Threads()
            << " threads\n";
}

}  // namespace
}  // namespace workflows
