// Benchmarks of the fake Workflows server and test kit against a bare grpc++
// service with the same handler on the same transport (bench/bare_server.h).
// Run them through bench/run.sh, which interleaves subjects, repeats them and
// prints fake/bare ratios. Names are "BM_<Subject>/<transport>/<side>".

#include <benchmark/benchmark.h>
#include <grpcpp/grpcpp.h>
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "bench/bare_server.h"
#include "bench/bench_env.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/in_memory_backend.h"
#include "fake_server/journal.h"
#include "proto/job.grpc.pb.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace bench {
namespace {

namespace dw = descarteslabs::workflows;
using fake::FakeServerOptions;
using fake::FakeWorkflowsServer;
using fake::Transport;

constexpr int kLoadThreads = 32;
constexpr int kLoadCallsPerThread = 100;

// Paired measurement: the bare server and the fake run side by side in one
// benchmark, and each iteration times a batch on one then a batch on the
// other, alternating which goes first. Thread wake-up latency on a shared VM
// drifts by tens of percent over seconds; pairing puts that drift on both
// sides equally, so the ratio is about the servers and not the moment.
struct PairedTimes {
  int64_t bare_ns = 0;
  int64_t fake_ns = 0;
  int64_t calls_per_side = 0;
};

int64_t TimeNs(const std::function<void()>& batch) {
  const auto start = std::chrono::steady_clock::now();
  batch();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now() - start)
      .count();
}

// Runs `batch(env, stub)` on both sides per iteration and reports per-side
// counters. `calls_per_batch` is how many RPCs one batch makes.
template <typename Batch>
void RunPaired(benchmark::State& state, Side side, Net net,
               int64_t calls_per_batch, const Batch& batch) {
  absl::StatusOr<Env> bare = MakeEnv(kBare, net);
  absl::StatusOr<Env> fake = MakeEnv(side, net);
  if (!bare.ok() || !fake.ok()) {
    state.SkipWithError(
        (bare.ok() ? fake.status() : bare.status()).ToString().c_str());
    return;
  }
  auto bare_stub = dw::JobAPI::NewStub(bare->channel);
  auto fake_stub = dw::JobAPI::NewStub(fake->channel);
  std::string error;
  // Connect and warm up both before timing anything.
  for (int i = 0; i < 20; ++i) {
    if (!GetJobOnce(*bare_stub, bare->job_id, &error) ||
        !GetJobOnce(*fake_stub, fake->job_id, &error)) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
  PairedTimes times;
  bool bare_first = true;
  bool failed = false;
  for (auto _ : state) {
    auto run_bare = [&] {
      times.bare_ns +=
          TimeNs([&] { failed |= !batch(*bare_stub, bare->job_id, &error); });
    };
    auto run_fake = [&] {
      times.fake_ns +=
          TimeNs([&] { failed |= !batch(*fake_stub, fake->job_id, &error); });
    };
    if (bare_first) {
      run_bare();
      run_fake();
    } else {
      run_fake();
      run_bare();
    }
    bare_first = !bare_first;
    times.calls_per_side += calls_per_batch;
    if (failed) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
  const double calls = static_cast<double>(times.calls_per_side);
  state.counters["bare_us_per_call"] = times.bare_ns / 1e3 / calls;
  state.counters["fake_us_per_call"] = times.fake_ns / 1e3 / calls;
  state.counters["bare_qps"] = calls / (times.bare_ns / 1e9);
  state.counters["fake_qps"] = calls / (times.fake_ns / 1e9);
  // Fake time over bare time; for load this is bare QPS over fake QPS.
  state.counters["ratio"] =
      static_cast<double>(times.fake_ns) / static_cast<double>(times.bare_ns);
}

// --- Unary GetJob, one client thread, batches of kUnaryBatch calls. ---
constexpr int kUnaryBatch = 20;

void BM_UnaryPaired(benchmark::State& state, Side side, Net net) {
  RunPaired(
      state, side, net, kUnaryBatch,
      [](dw::JobAPI::Stub& stub, const std::string& id, std::string* error) {
        for (int i = 0; i < kUnaryBatch; ++i) {
          if (!GetJobOnce(stub, id, error)) return false;
        }
        return true;
      });
}

// --- Load: bursts of 32 client threads on one channel. ---
void BM_LoadPaired(benchmark::State& state, Side side, Net net) {
  RunPaired(
      state, side, net, kLoadThreads * kLoadCallsPerThread,
      [](dw::JobAPI::Stub& stub, const std::string& id, std::string* error) {
        std::atomic<int64_t> failures{0};
        std::vector<std::thread> threads;
        threads.reserve(kLoadThreads);
        for (int t = 0; t < kLoadThreads; ++t) {
          threads.emplace_back([&] {
            std::string thread_error;
            for (int i = 0; i < kLoadCallsPerThread; ++i) {
              if (!GetJobOnce(stub, id, &thread_error)) ++failures;
            }
          });
        }
        for (std::thread& thread : threads) thread.join();
        if (failures > 0) {
          *error = absl::StrCat(failures.load(), " load calls failed");
        }
        return failures == 0;
      });
}

// --- WatchJob: one stream of kWatchMessages states; items/s is msg/s. ---
void BM_WatchJob(benchmark::State& state, Side side) {
  absl::StatusOr<Env> env = MakeEnv(side, kInProcess);
  if (!env.ok()) {
    state.SkipWithError(env.status().ToString().c_str());
    return;
  }
  auto stub = dw::JobAPI::NewStub(env->channel);
  for (auto _ : state) {
    grpc::ClientContext context;
    dw::WatchJobRequest request;
    request.set_id(env->job_id);
    auto reader = stub->WatchJob(&context, request);
    dw::Job::State message;
    int received = 0;
    while (reader->Read(&message)) ++received;
    grpc::Status status = reader->Finish();
    if (!status.ok() || received != kWatchMessages) {
      state.SkipWithError(absl::StrCat("WatchJob: ", status.error_message(),
                                       " received ", received)
                              .c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * kWatchMessages);
}

// --- Server start + stop, in-process, no calls. ---
void BM_StartStop(benchmark::State& state, Side side) {
  for (auto _ : state) {
    if (side == kBare) {
      auto bare = BareServer::Start(BareServer::Options{});
      if (!bare.ok()) {
        state.SkipWithError("bare start failed");
        break;
      }
      (*bare)->Shutdown();
    } else {
      FakeServerOptions options;
      options.transport = Transport::kInProcess;
      auto fake = FakeWorkflowsServer::Start(std::move(options));
      if (!fake.ok()) {
        state.SkipWithError(fake.status().ToString().c_str());
        break;
      }
      (*fake)->Shutdown();
    }
  }
}

// WorkflowsTest driven by hand: SetUp, one call, TearDown, as gtest would.
class FixtureProbe : public testing::WorkflowsTest {
 public:
  void TestBody() override {}
  void Up() { SetUp(); }
  void Down() { TearDown(); }
};

// --- Fixture: start, connect, one RPC, teardown. ---
void BM_Fixture(benchmark::State& state, Side side) {
  std::string error;
  for (auto _ : state) {
    if (side == kBare) {
      auto bare = BareServer::Start(BareServer::Options{});
      if (!bare.ok()) {
        state.SkipWithError("bare start failed");
        break;
      }
      const std::string id = (*bare)->backend().PutJob(SampleJob());
      auto stub = dw::JobAPI::NewStub((*bare)->InProcessChannel());
      if (!GetJobOnce(*stub, id, &error)) {
        state.SkipWithError(error.c_str());
        break;
      }
      stub.reset();
      (*bare)->Shutdown();
    } else {
      FixtureProbe fixture;
      fixture.Up();
      const std::string id = fixture.in_memory().PutJob(SampleJob());
      dw::GetJobRequest request;
      request.set_id(id);
      auto job = fixture.client().GetJob(request);
      if (!job.ok() || job->id() != id) {
        state.SkipWithError(job.status().ToString().c_str());
        break;
      }
      fixture.Down();
    }
  }
}

int64_t VmRssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      int64_t kib = 0;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits.push_back(c);
      }
      if (absl::SimpleAtoi(digits, &kib)) return kib;
    }
  }
  return -1;
}

// Bytes of heap in use (glibc's count: allocated chunks, mmapped ones
// included), however much of it was reused.
int64_t HeapInUseBytes() {
  const struct mallinfo2 info = mallinfo2();
  return static_cast<int64_t>(info.uordblks + info.hblkhd);
}

// --- Memory: RSS of 100 idle in-process servers, per server. ---
void BM_IdleServerRss(benchmark::State& state, Side side) {
  constexpr int kServers = 100;
  for (auto _ : state) {
    std::vector<std::unique_ptr<BareServer>> bares;
    std::vector<std::unique_ptr<FakeWorkflowsServer>> fakes;
    const int64_t before = VmRssKib();
    for (int i = 0; i < kServers; ++i) {
      if (side == kBare) {
        bares.push_back(BareServer::Start(BareServer::Options{}).value());
      } else {
        FakeServerOptions options;
        options.transport = Transport::kInProcess;
        fakes.push_back(FakeWorkflowsServer::Start(std::move(options)).value());
      }
    }
    const int64_t after = VmRssKib();
    state.counters["rss_kib_per_server"] =
        static_cast<double>(after - before) / kServers;
  }
}

// --- Memory: the journal after 10,000 GetJob calls. ---
// `mode`: 0 journal disabled, 1 enabled (default cap), 2 enabled, cap 1000.
void BM_Journal10k(benchmark::State& state, int mode) {
  constexpr int kCalls = 10000;
  for (auto _ : state) {
    fake::JournalOptions journal;
    journal.enabled = mode != 0;
    if (mode == 2) journal.max_calls = 1000;
    absl::StatusOr<Env> env = MakeEnv(kFake, kInProcess, journal);
    if (!env.ok()) {
      state.SkipWithError(env.status().ToString().c_str());
      break;
    }
    auto stub = dw::JobAPI::NewStub(env->channel);
    std::string error;
    GetJobOnce(*stub, env->job_id, &error);
    env->fake->journal().Clear();
    const int64_t before = VmRssKib();
    const int64_t heap_before = HeapInUseBytes();
    for (int i = 0; i < kCalls; ++i) {
      if (!GetJobOnce(*stub, env->job_id, &error)) {
        state.SkipWithError(error.c_str());
        return;
      }
    }
    const int64_t after = VmRssKib();
    const int64_t heap_after = HeapInUseBytes();
    const std::vector<fake::RecordedCall> calls = env->fake->journal().Calls();
    state.counters["rss_kib_per_10k"] = static_cast<double>(after - before);
    // What the journal's stored form really costs: the heap it holds, not
    // the size of the RecordedCall messages it builds when read. RSS growth
    // would undercount it wherever earlier benchmarks left freed memory to
    // reuse.
    state.counters["journal_bytes_per_call"] =
        static_cast<double>(heap_after - heap_before) / kCalls;
    state.counters["retained_calls"] = static_cast<double>(calls.size());
    state.counters["dropped_calls"] =
        static_cast<double>(env->fake->journal().dropped_calls());
  }
}

void Register() {
  struct NetName {
    Net net;
    const char* name;
  };
  const NetName nets[] = {{kInProcess, "inproc"}, {kTcp, "tcp"}, {kTls, "tls"}};
  for (const NetName& n : nets) {
    benchmark::RegisterBenchmark(
        absl::StrCat("BM_UnaryPaired/", n.name, "/fake").c_str(),
        BM_UnaryPaired, kFake, n.net)
        ->UseRealTime();
  }
  // Every fake variant on every transport: the script and the gMock
  // backend cost the same per call wherever the bytes travel, and this
  // shows it rather than assuming it.
  const std::pair<Side, const char*> variants[] = {
      {kFakeScripted, "fake_scripted"},
      {kFakeNoJournal, "fake_nojournal"},
      {kFakeGmock, "fake_gmock"}};
  for (const NetName& n : nets) {
    for (const auto& [side, name] : variants) {
      benchmark::RegisterBenchmark(
          absl::StrCat("BM_UnaryPaired/", n.name, "/", name).c_str(),
          BM_UnaryPaired, side, n.net)
          ->UseRealTime();
    }
  }
  for (const NetName& n : nets) {
    benchmark::RegisterBenchmark(
        absl::StrCat("BM_LoadPaired/", n.name, "/fake").c_str(), BM_LoadPaired,
        kFake, n.net)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("BM_LoadPaired/inproc/fake_nojournal",
                               BM_LoadPaired, kFakeNoJournal, kInProcess)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_WatchJob/inproc/bare", BM_WatchJob, kBare)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_WatchJob/inproc/fake", BM_WatchJob, kFake)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_StartStop/inproc/bare", BM_StartStop, kBare)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_StartStop/inproc/fake", BM_StartStop, kFake)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_Fixture/inproc/bare", BM_Fixture, kBare)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_Fixture/inproc/fake", BM_Fixture, kFake)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_IdleServerRss/inproc/bare", BM_IdleServerRss,
                               kBare)
      ->Iterations(1)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_IdleServerRss/inproc/fake", BM_IdleServerRss,
                               kFake)
      ->Iterations(1)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_Journal10k/inproc/disabled", BM_Journal10k,
                               0)
      ->Iterations(1)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_Journal10k/inproc/enabled", BM_Journal10k, 1)
      ->Iterations(1)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_Journal10k/inproc/capped1000", BM_Journal10k,
                               2)
      ->Iterations(1)
      ->UseRealTime();
}

}  // namespace
}  // namespace bench
}  // namespace workflows

int main(int argc, char** argv) {
  workflows::bench::Register();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
