#include "fake_server/in_memory_bridge.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "fake_server/in_memory_backend.h"

namespace workflows {
namespace fake {
namespace {

JobProgression ToProgression(const JobProgressionSpec& spec) {
  JobProgression progression;
  progression.stage_duration = spec.stage_duration;
  progression.fail_in_stage = spec.fail_in_stage;
  progression.error_code = spec.error_code;
  if (!spec.error_message.empty()) {
    progression.error_message = spec.error_message;
  }
  return progression;
}

}  // namespace

InMemoryBackendHandle MakeInMemoryBackend(std::shared_ptr<Clock> clock,
                                          std::shared_ptr<HealthState> health) {
  InMemoryBackend::Options options;
  options.clock = std::move(clock);
  options.health = std::move(health);
  auto backend = std::make_shared<InMemoryBackend>(std::move(options));
  InMemoryBackend* raw = backend.get();
  return InMemoryBackendHandle{std::move(backend), raw};
}

absl::Status ValidateSeed(const BackendSeed& seed) {
  // A scratch backend accepts exactly what the real one will.
  InMemoryBackend scratch;
  for (const auto& workflow : seed.workflows) {
    absl::Status status = scratch.PutWorkflow(workflow);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("seed.workflows: ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplySeed(InMemoryBackend* backend, const BackendSeed& seed) {
  for (const auto& workflow : seed.workflows) {
    absl::Status status = backend->PutWorkflow(workflow);
    if (!status.ok()) return status;
  }
  if (seed.progression.has_value()) {
    backend->SetDefaultJobProgression(ToProgression(*seed.progression));
  }
  for (const auto& job : seed.jobs) backend->PutJob(job);
  return absl::OkStatus();
}

void ResetInMemoryBackend(InMemoryBackend* backend) { backend->Reset(); }

void WakeInMemoryBackend(InMemoryBackend* backend) { backend->WakeAll(); }

}  // namespace fake
}  // namespace workflows
