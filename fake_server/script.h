#ifndef WORKFLOWS_FAKE_SERVER_SCRIPT_H_
#define WORKFLOWS_FAKE_SERVER_SCRIPT_H_

// CONTRACT (written by the lead; implementation in script.cc). Keep these
// declarations; add to them if needed.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "fake_server/scenario.pb.h"
#include "google/protobuf/message.h"
#include <grpcpp/support/status.h>

namespace workflows {
namespace fake {

// What the script knows about a call when deciding.
struct CallView {
  // Full method path, e.g. "/descarteslabs.workflows.JobAPI/GetJob".
  absl::string_view method;
  const google::protobuf::Message* request = nullptr;
  const std::multimap<std::string, std::string>* metadata = nullptr;
};

// The outcome of Script::Decide.
struct Decision {
  // The behaviour to run; `pass_through` set when nothing is scripted.
  Behavior behavior;
  // The rule that matched ("" when none), for the journal and diagnostics.
  std::string rule_name;
};

// Script holds the scripted rules and auth policy of one server and decides,
// per call, which Behavior runs. Thread-safe: rules can be added, replaced or
// cleared while calls are in flight; each call sees one consistent version.
//
//   Script script(/*seed=*/42);
//   Rule rule;
//   rule.set_method("GetJob");
//   rule.set_fail_times(2);
//   rule.mutable_behavior_on_fail()->mutable_fail()->set_code("UNAVAILABLE");
//   ASSERT_TRUE(script.AddRule(rule).ok());
//   Decision d = script.Decide(call);   // UNAVAILABLE, UNAVAILABLE, pass...
class Script {
 public:
  explicit Script(uint64_t random_seed = 0);

  // Validates `rule` (method name known, textproto parses against the
  // request type, Any payloads match the response type, codes valid) and adds
  // it. An unknown method is INVALID_ARGUMENT listing the valid names.
  absl::Status AddRule(const Rule& rule);

  // Replaces all rules and the auth policy with the scenario's, all or
  // nothing: on error nothing changes. Health, seed and job progression are
  // applied by the server, not here.
  absl::Status Load(const Scenario& scenario);

  // Removes all rules and the auth policy; resets counters and the RNG.
  void Clear();

  void SetAuthPolicy(const AuthPolicy& policy);

  // Checks the auth policy; returns the status to fail the call with, or
  // nullopt to let it through.
  std::optional<grpc::Status> CheckAuth(const CallView& call) const;

  // Picks the behaviour for one call and advances that rule's counters.
  Decision Decide(const CallView& call);

 private:
  // Implementation-defined.
  struct State;
  mutable absl::Mutex mu_;
  std::shared_ptr<State> state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_SCRIPT_H_
