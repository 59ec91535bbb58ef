// Counts the CPU instructions one in-process unary GetJob costs, bare grpc++
// against the fake server, with callgrind: instruction counts do not drift
// with the machine's load the way wall time does, so they show where the
// fake's overhead is. Run through bench/instructions.sh, which runs this
// binary under callgrind with two call counts per side; the difference of the
// totals is the cost of the extra calls alone (start-up and warm-up cancel).
// The subjects are bench_env's, the same as workflows_bench's.
//
//   unary_instructions <bare|fake|fake_scripted|fake_nojournal|fake_gmock>
//                      <calls>

#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "bench/bench_env.h"

namespace {

using ::workflows::bench::Env;

int FailedCalls(const Env& env, int calls, std::string* error) {
  auto stub = descarteslabs::workflows::JobAPI::NewStub(env.channel);
  int failures = 0;
  for (int i = 0; i < calls; ++i) {
    if (!workflows::bench::GetJobOnce(*stub, env.job_id, error)) ++failures;
  }
  return failures;
}

int Usage() {
  std::fprintf(stderr,
               "usage: unary_instructions "
               "<bare|fake|fake_scripted|fake_nojournal|fake_gmock> <calls>\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 0;
  if (argc != 3 || !absl::SimpleAtoi(argv[2], &calls) || calls <= 0) {
    return Usage();
  }
  const std::optional<workflows::bench::Side> side =
      workflows::bench::ParseSide(argv[1]);
  if (!side.has_value()) return Usage();
  absl::StatusOr<Env> env =
      workflows::bench::MakeEnv(*side, workflows::bench::kInProcess);
  if (!env.ok()) {
    std::fprintf(stderr, "%s\n", env.status().ToString().c_str());
    return 1;
  }
  std::string error;
  // Warm up: connection, first-call allocations, lazily built state.
  if (FailedCalls(*env, 50, &error) != 0) {
    std::fprintf(stderr, "warm-up calls failed: %s\n", error.c_str());
    return 1;
  }
  const int failures = FailedCalls(*env, calls, &error);
  if (failures != 0) {
    std::fprintf(stderr, "%d of %d calls failed: %s\n", failures, calls,
                 error.c_str());
    return 1;
  }
  std::printf("%s: %d calls\n", argv[1], calls);
  return 0;
}
