#ifndef WORKFLOWS_BENCH_BENCH_ENV_H_
#define WORKFLOWS_BENCH_BENCH_ENV_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/bare_server.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/journal.h"
#include "proto/job.grpc.pb.h"

namespace workflows {
namespace bench {

// Which server a benchmark subject talks to: the bare grpc++ baseline, or the
// fake server unscripted (pass-through), with a scripted GetJob reply, with
// the journal off, or with a gMock backend as WorkflowsTest builds it.
enum Side { kBare, kFake, kFakeScripted, kFakeNoJournal, kFakeGmock };
// How the client reaches it.
enum Net { kInProcess, kTcp, kTls };

// The one definition of each subject, shared by workflows_bench (wall time)
// and unary_instructions (callgrind), so that both measure the same thing:
// a started server, a channel to it and the id of a job to GetJob.
//
//   absl::StatusOr<Env> env = MakeEnv(kFake, kInProcess);
//   auto stub = descarteslabs::workflows::JobAPI::NewStub(env->channel);
//   std::string error;
//   if (!GetJobOnce(*stub, env->job_id, &error)) ...
struct Env {
  std::unique_ptr<BareServer> bare;
  std::unique_ptr<fake::FakeWorkflowsServer> fake;
  std::shared_ptr<grpc::Channel> channel;
  std::string job_id;
};

// Number of states WatchJob streams, on both sides.
inline constexpr int kWatchMessages = 1000;

// Starts `side` on `net`. Every fake also has a scripted WatchJob stream
// (kWatchMessages states, as the bare server streams), so "pass-through"
// GetJob is measured on a server with a rule for another method, as in a
// real test, not on an entirely unscripted one.
absl::StatusOr<Env> MakeEnv(Side side, Net net,
                            fake::JournalOptions journal = {});

// "bare", "fake", "fake_scripted", "fake_nojournal" or "fake_gmock"; and back.
absl::string_view SideName(Side side);
std::optional<Side> ParseSide(absl::string_view name);

// The job every subject serves.
descarteslabs::workflows::Job SampleJob();

// One GetJob of `id`; false (and `error` set) unless it returns that job.
bool GetJobOnce(descarteslabs::workflows::JobAPI::Stub& stub,
                const std::string& id, std::string* error);

}  // namespace bench
}  // namespace workflows

#endif  // WORKFLOWS_BENCH_BENCH_ENV_H_
