// Counts the CPU instructions one in-process unary GetJob costs, bare grpc++
// against the fake server, with callgrind: instruction counts do not drift
// with the machine's load the way wall time does, so they show where the
// fake's overhead is. Run through bench/instructions.sh, which runs this
// binary under callgrind with two call counts per side; the difference of the
// totals is the cost of the extra calls alone (start-up and warm-up cancel).
//
//   unary_instructions <bare|fake|fake_nojournal|fake_scripted> <calls>

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "bench/bare_server.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/in_memory_backend.h"
#include "proto/job.grpc.pb.h"

namespace dw = ::descarteslabs::workflows;

namespace {

int TimedCalls(dw::JobAPI::Stub& stub, const std::string& id, int calls) {
  int failures = 0;
  for (int i = 0; i < calls; ++i) {
    grpc::ClientContext context;
    dw::GetJobRequest request;
    request.set_id(id);
    dw::Job job;
    if (!stub.GetJob(&context, request, &job).ok() || job.id() != id) {
      ++failures;
    }
  }
  return failures;
}

dw::Job SampleJob() {
  dw::Job job;
  job.set_serialized_graft("{\"x\": [\"code\", 1]}");
  job.set_channel("v0-20");
  job.set_user("user-1");
  return job;
}

int Usage() {
  std::fprintf(stderr,
               "usage: unary_instructions "
               "<bare|fake|fake_nojournal|fake_scripted> <calls>\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 0;
  if (argc != 3 || !absl::SimpleAtoi(argv[2], &calls) || calls <= 0) {
    return Usage();
  }
  const absl::string_view side = argv[1];
  std::unique_ptr<workflows::bench::BareServer> bare;
  std::unique_ptr<workflows::fake::FakeWorkflowsServer> fake;
  std::shared_ptr<grpc::Channel> channel;
  std::string id;
  if (side == "bare") {
    auto started = workflows::bench::BareServer::Start({});
    if (!started.ok()) {
      std::fprintf(stderr, "%s\n", started.status().ToString().c_str());
      return 1;
    }
    bare = *std::move(started);
    id = bare->backend().PutJob(SampleJob());
    channel = bare->InProcessChannel();
  } else if (side == "fake" || side == "fake_nojournal" ||
             side == "fake_scripted") {
    workflows::fake::FakeServerOptions options;
    options.transport = workflows::fake::Transport::kInProcess;
    options.journal.enabled = side != "fake_nojournal";
    auto started = workflows::fake::FakeWorkflowsServer::Start(options);
    if (!started.ok()) {
      std::fprintf(stderr, "%s\n", started.status().ToString().c_str());
      return 1;
    }
    fake = *std::move(started);
    id = fake->in_memory_backend()->PutJob(SampleJob());
    if (side == "fake_scripted") {
      workflows::fake::Rule rule;
      rule.set_method("GetJob");
      dw::Job job = SampleJob();
      job.set_id(id);
      rule.mutable_behavior()->mutable_reply()->PackFrom(job);
      if (absl::Status added = fake->script().AddRule(rule); !added.ok()) {
        std::fprintf(stderr, "%s\n", added.ToString().c_str());
        return 1;
      }
    }
    channel = fake->InProcessChannel();
  } else {
    return Usage();
  }
  auto stub = dw::JobAPI::NewStub(channel);
  // Warm up: connection, first-call allocations, lazily built state.
  if (TimedCalls(*stub, id, 50) != 0) {
    std::fprintf(stderr, "warm-up calls failed\n");
    return 1;
  }
  const int failures = TimedCalls(*stub, id, calls);
  if (failures != 0) {
    std::fprintf(stderr, "%d of %d calls failed\n", failures, calls);
    return 1;
  }
  std::printf("%s: %d calls\n", argv[1], calls);
  return 0;
}
