#ifndef WORKFLOWS_FAKE_SERVER_SEED_H_
#define WORKFLOWS_FAKE_SERVER_SEED_H_

#include <string>
#include <vector>

#include "fake_server/in_memory_backend.h"
#include "fake_server/scenario.pb.h"

namespace workflows {
namespace fake {

// One problem with a scenario's seed: `field` is the Seed field ("xyzs"),
// `index` the entry, `message` what is wrong with it.
struct SeedProblem {
  std::string field;
  int index = 0;
  std::string message;

  // "seed.xyzs[2]: id \"xyz-1\" is listed twice".
  std::string ToString() const;
};

// Checks a scenario's Seed (see scenario.proto) the way the in-memory
// backend will take it, so that the scenario loader (file:line errors) and
// FakeWorkflowsServer::LoadScenario accept exactly the same seeds. Empty
// when the seed is valid.
//
//   for (const SeedProblem& problem : CheckSeed(scenario.seed())) { ... }
//   if (CheckSeed(scenario.seed()).empty()) ApplySeed(scenario.seed(),
//   &backend);
std::vector<SeedProblem> CheckSeed(const Seed& seed);

// Stores a seed that CheckSeed accepted: workflows, jobs (with the
// backend's default progression), XYZs, their session logs, access grants.
void ApplySeed(const Seed& seed, InMemoryBackend* backend);

// True if the seed holds anything.
bool SeedIsEmpty(const Seed& seed);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_SEED_H_
