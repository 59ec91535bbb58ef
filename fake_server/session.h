#ifndef WORKFLOWS_FAKE_SERVER_SESSION_H_
#define WORKFLOWS_FAKE_SERVER_SESSION_H_

#include <map>
#include <string>

#include "absl/strings/string_view.h"

namespace workflows {
namespace fake {

// Request metadata naming the session a call belongs to. Sessions let many
// tests (e.g. parallel CI jobs) share one fake server: each tags its calls
// with its own value, loads rules that apply only to its calls
// (FakeControl/LoadScenario with `session`, Script::LoadSession) and reads,
// waits on and clears only its own calls in the journal. Calls without it
// are in the default session "".
//
//   grpc::ClientContext context;
//   context.AddMetadata(std::string(kSessionMetadataKey), "ci-job-17");
//   stub->GetJob(&context, request, &job);  // sees session "ci-job-17" rules
inline constexpr absl::string_view kSessionMetadataKey = "x-fake-session";

// The session of a call with request metadata `metadata`: the first
// kSessionMetadataKey value, "" if there is none. The view points into
// `metadata`.
inline absl::string_view SessionOf(
    const std::multimap<std::string, std::string>& metadata) {
  // Built once: the multimap's find takes a std::string, and this runs on
  // every call.
  static const std::string* const kKey = new std::string(kSessionMetadataKey);
  auto it = metadata.find(*kKey);
  if (it == metadata.end()) return absl::string_view();
  return it->second;
}

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_SESSION_H_
