#ifndef WORKFLOWS_FAKE_SERVER_METHODS_H_
#define WORKFLOWS_FAKE_SERVER_METHODS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"

namespace workflows {
namespace fake {

// One RPC the fake server serves, read from the generated descriptors.
struct MethodInfo {
  std::string full_name;  // "/descarteslabs.workflows.JobAPI/GetJob"
  std::string bare_name;  // "GetJob"
  std::string service;    // "descarteslabs.workflows.JobAPI"
  bool server_streaming = false;
  const google::protobuf::Descriptor* request_type = nullptr;
  const google::protobuf::Descriptor* response_type = nullptr;
};

// Every method of WorkflowAPI, JobAPI, XYZAPI, AccessGrantApi and
// grpc.health.v1.Health, in a stable order.
const std::vector<MethodInfo>& AllMethods();

// Looks a method up by bare or full name ("GetJob", "JobAPI/GetJob",
// "/descarteslabs.workflows.JobAPI/GetJob"). An unknown name is
// INVALID_ARGUMENT whose message lists the valid bare names.
// Names are case-sensitive; a near miss ("getjob", "GetJbo") adds a
// "did you mean" to the error.
absl::StatusOr<const MethodInfo*> FindMethod(absl::string_view name);

// True for grpc.health.v1.Health methods, which the auth policy exempts.
bool IsHealthMethod(const MethodInfo& method);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_METHODS_H_
