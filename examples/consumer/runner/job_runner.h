#ifndef CONSUMER_RUNNER_JOB_RUNNER_H_
#define CONSUMER_RUNNER_JOB_RUNNER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/client.h"

namespace consumer {

// JobRunner is the downstream code under test: it submits a Workflows job,
// waits for it with a timeout, and returns the finished job. Transient
// failures (UNAVAILABLE, rate limiting on submission, broken watch streams)
// are retried by the client underneath.
//
//   JobRunner runner(workflows::Client::GetDefaultClient());
//   absl::StatusOr<descarteslabs::workflows::Job> job =
//       runner.Run("{\"returns\": 1}");
class JobRunner {
 public:
  struct Options {
    // How long to wait for the job to finish (cancelled after that).
    absl::Duration timeout = absl::Minutes(10);
    // Retries of the submission, including on 429 (RESOURCE_EXHAUSTED).
    int submit_retries = 3;
  };

  explicit JobRunner(std::shared_ptr<workflows::Client> client);
  JobRunner(std::shared_ptr<workflows::Client> client, Options options);

  // Submits `serialized_graft` and waits for the job. Returns the job in its
  // final SUCCEEDED state, or the error: the job's error for FAILED, a
  // timeout error, or the RPC error.
  absl::StatusOr<descarteslabs::workflows::Job> Run(
      const std::string& serialized_graft);

 private:
  const std::shared_ptr<workflows::Client> client_;
  const Options options_;
};

}  // namespace consumer

#endif  // CONSUMER_RUNNER_JOB_RUNNER_H_
