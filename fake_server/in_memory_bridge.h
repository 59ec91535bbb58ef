#ifndef WORKFLOWS_FAKE_SERVER_IN_MEMORY_BRIDGE_H_
#define WORKFLOWS_FAKE_SERVER_IN_MEMORY_BRIDGE_H_

// The server's only view of InMemoryBackend: how it builds one, seeds it from
// a scenario and resets it. (It was introduced when scenario.proto's JobPlan
// was still named JobProgression and clashed with job_progression.h; the
// clash is gone, so the server may now use InMemoryBackend directly.)

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/clock.h"
#include "fake_server/backend.h"
#include "fake_server/health_state.h"
#include "proto/job.pb.h"
#include "proto/workflow.pb.h"

namespace workflows {
namespace fake {

class InMemoryBackend;

// The fields of scenario.proto's JobPlan, already defaulted.
struct JobProgressionSpec {
  absl::Duration stage_duration = absl::Seconds(1);
  // UNSPECIFIED: the job succeeds.
  descarteslabs::workflows::Job::Stage fail_in_stage =
      descarteslabs::workflows::Job::UNSPECIFIED;
  descarteslabs::workflows::ErrorCode error_code =
      descarteslabs::workflows::ERROR_UNKNOWN;
  std::string error_message;
};

// Backend contents and job progression a scenario applies.
struct BackendSeed {
  std::vector<descarteslabs::workflows::Workflow> workflows;
  std::vector<descarteslabs::workflows::Job> jobs;
  std::optional<JobProgressionSpec> progression;
};

struct InMemoryBackendHandle {
  std::shared_ptr<Backend> backend;
  InMemoryBackend* in_memory = nullptr;
};

InMemoryBackendHandle MakeInMemoryBackend(std::shared_ptr<Clock> clock,
                                          std::shared_ptr<HealthState> health);

// Checks that `seed` would apply cleanly (e.g. workflow ids "email:name").
absl::Status ValidateSeed(const BackendSeed& seed);
// Applies `seed`; call ValidateSeed first.
absl::Status ApplySeed(InMemoryBackend* backend, const BackendSeed& seed);

void ResetInMemoryBackend(InMemoryBackend* backend);
void WakeInMemoryBackend(InMemoryBackend* backend);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_IN_MEMORY_BRIDGE_H_
