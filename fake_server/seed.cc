#include "fake_server/seed.h"

#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace workflows {
namespace fake {

std::string SeedProblem::ToString() const {
  return absl::StrCat("seed.", field, "[", index, "]: ", message);
}

bool SeedIsEmpty(const Seed& seed) {
  return seed.workflows_size() == 0 && seed.jobs_size() == 0 &&
         seed.xyzs_size() == 0 && seed.access_grants_size() == 0 &&
         seed.xyz_session_logs_size() == 0;
}

std::vector<SeedProblem> CheckSeed(const Seed& seed) {
  std::vector<SeedProblem> problems;
  // A scratch backend accepts exactly what the real one will.
  InMemoryBackend scratch;
  for (int i = 0; i < seed.workflows_size(); ++i) {
    absl::Status valid = scratch.PutWorkflow(seed.workflows(i));
    if (!valid.ok()) {
      problems.push_back({"workflows", i, std::string(valid.message())});
    }
  }
  std::set<std::string> xyz_ids;
  for (int i = 0; i < seed.xyzs_size(); ++i) {
    const std::string& id = seed.xyzs(i).id();
    if (id.empty()) continue;  // Assigned when stored.
    if (!xyz_ids.insert(id).second) {
      problems.push_back(
          {"xyzs", i, absl::StrCat("id \"", id, "\" is listed twice")});
    }
  }
  for (int i = 0; i < seed.access_grants_size(); ++i) {
    absl::Status valid = scratch.PutAccessGrant(seed.access_grants(i));
    if (!valid.ok()) {
      problems.push_back({"access_grants", i, std::string(valid.message())});
    }
  }
  for (int i = 0; i < seed.xyz_session_logs_size(); ++i) {
    const std::string& id = seed.xyz_session_logs(i).xyz_id();
    if (id.empty()) {
      problems.push_back({"xyz_session_logs", i,
                          "xyz_id is required: the id of an XYZ in seed.xyzs"});
    } else if (xyz_ids.count(id) == 0) {
      problems.push_back(
          {"xyz_session_logs", i,
           absl::StrCat("xyz_id \"", id,
                        "\" is not the id of an XYZ in seed.xyzs")});
    }
  }
  return problems;
}

void ApplySeed(const Seed& seed, InMemoryBackend* backend) {
  // Each step was validated by CheckSeed.
  for (const auto& workflow : seed.workflows()) {
    backend->PutWorkflow(workflow).IgnoreError();
  }
  for (const auto& job : seed.jobs()) backend->PutJob(job);
  for (const auto& xyz : seed.xyzs()) backend->SeedXYZ(xyz);
  for (const auto& logs : seed.xyz_session_logs()) {
    for (const auto& record : logs.records()) {
      backend->AppendXYZLog(logs.xyz_id(), record).IgnoreError();
    }
  }
  for (const auto& grant : seed.access_grants()) {
    backend->PutAccessGrant(grant).IgnoreError();
  }
}

}  // namespace fake
}  // namespace workflows
