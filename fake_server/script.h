#ifndef WORKFLOWS_FAKE_SERVER_SCRIPT_H_
#define WORKFLOWS_FAKE_SERVER_SCRIPT_H_

#include <grpcpp/support/status.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "fake_server/scenario.pb.h"
#include "google/protobuf/message.h"

namespace workflows {
namespace fake {

// What the script knows about a call when deciding.
struct CallView {
  // Full method path, e.g. "/descarteslabs.workflows.JobAPI/GetJob".
  absl::string_view method;
  const google::protobuf::Message* request = nullptr;
  const std::multimap<std::string, std::string>* metadata = nullptr;
};

// The outcome of Script::Decide (and of a failed Script::CheckAuth).
struct Decision {
  // The behaviour to run; `pass_through` set when nothing is scripted.
  Behavior behavior;
  // The rule that matched ("" when none), for the journal and diagnostics:
  // the rule's `name`, else "<BareMethod>#<n>" (n counts rules added to this
  // Script), or kAuthPolicyRuleName for auth failures.
  std::string rule_name;
};

// Decision::rule_name of calls rejected by the auth policy.
inline constexpr absl::string_view kAuthPolicyRuleName = "auth_policy";

// Checks one rule as Script::AddRule does, without adding it: the method is
// known, match.request_textproto parses against the request type, Any
// payloads have the response type, `reply` only on unary and `stream` only on
// server-streaming methods, status codes valid, durations non-negative,
// metadata keys valid, 0 <= probability <= 1, and `fail_times` comes with a
// `behavior_on_fail`. Errors name the offending field, e.g.
//   sequence[1].fail.code: unknown status code "UNAVAILBLE"; valid: OK, ...
// The scenario loader prefixes them with the file and rule index.
absl::Status ValidateRule(const Rule& rule);

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
  // `random_seed` seeds the generator behind `Rule.probability`: for one
  // seed and one call order, decisions are the same on every run.
  explicit Script(uint64_t random_seed = 0);
  ~Script();

  Script(const Script&) = delete;
  Script& operator=(const Script&) = delete;

  // Validates `rule` (see ValidateRule) and adds it as the newest rule, so it
  // is tried before all earlier ones. Errors are INVALID_ARGUMENT naming the
  // rule, e.g. `rule "flaky" (method "GetJbo"): unknown method "GetJbo";
  // did you mean "GetJob"? valid: ...`.
  absl::Status AddRule(const Rule& rule);

  // Replaces the global rules and the auth policy with the scenario's, all
  // or nothing: on error nothing changes. Later rules in the scenario are
  // newer, so they win over earlier ones. Counters restart and the generator
  // is reseeded with `scenario.random_seed` (0: the constructor's seed).
  // Session rules (LoadSession) stay: one job's global setup must not wipe
  // what parallel jobs scripted for themselves. Health, seed data and job
  // progression are applied by the server, not here. Errors name the rule:
  // `rules[2] (method "GetJbo"): unknown method ...`.
  absl::Status Load(const Scenario& scenario);

  // Sessions (see kSessionMetadataKey in session.h): rules that apply only
  // to calls tagged with one session, tried before the global rules. A
  // tagged call that no session rule decides falls through to the global
  // rules; untagged calls never see session rules.
  //
  //   Scenario outage;  // rules only
  //   ASSERT_TRUE(script.LoadSession("job-a", outage).ok());
  //   ...               // calls with "x-fake-session: job-a" fail
  //   script.ClearSession("job-a");
  //
  // Loads `scenario.rules` for `session` (non-empty), all or nothing:
  // `merge` false replaces that session's rules, true adds them on top
  // (tried first). Other sessions and the global rules are untouched. The
  // scenario may hold only rules (and name/description): auth, health, seed,
  // job_progression and random_seed act server-wide, so they are
  // INVALID_ARGUMENT naming the field, e.g. `session "job-a": auth is
  // server-wide; ...`.
  absl::Status LoadSession(absl::string_view session, const Scenario& scenario,
                           bool merge = false);

  // Removes the rules of `session`; other sessions and the global rules stay.
  void ClearSession(absl::string_view session);

  // Removes all rules (global and every session's) and the auth policy;
  // resets counters and the RNG.
  void Clear();

  void SetAuthPolicy(const AuthPolicy& policy);

  // Checks the auth policy (see AuthPolicy in scenario.proto). Returns
  // nullopt to let the call through, else the Decision to end it with: a
  // Behavior whose `fail` is UNAUTHENTICATED or PERMISSION_DENIED and whose
  // `trailing_metadata` carries `retry-after` when the policy sets it, with
  // rule_name kAuthPolicyRuleName. Run it like any other Decision, so the
  // trailers reach the client and the journal records the rejection
  // (DecideCall below does both steps):
  //
  //   std::optional<Decision> rejected = script.CheckAuth(view);
  //   if (rejected) status = RunUnaryBehavior(rejected->behavior, call, ...);
  //
  // Messages: "missing authorization: Bearer token", "authorization token
  // expired; ...", "invalid bearer token", "permission denied for this
  // token". Health methods are exempt unless `include_health`.
  std::optional<Decision> CheckAuth(const CallView& call) const;

  // Picks the behaviour for one call and advances that rule's counters.
  // The rules of the call's session (if it has one) are tried first, then
  // the global rules; each set newest first. A rule applies if its method
  // and matcher match, it is not exhausted (`times`), and its probability
  // draw succeeds.
  // Thread-safe and lock-free with respect to rescripting: one call sees one
  // rule version from start to end.
  Decision Decide(const CallView& call);

  // What the server runs for a call: CheckAuth's refusal if the auth policy
  // refuses it, else Decide's decision, both from one version of the script
  // (so a rescript between the two cannot mix policies).
  //
  //   const Decision decision = script.DecideCall(view);
  //   grpc::Status status = RunUnaryBehavior(decision.behavior, call, ...);
  Decision DecideCall(const CallView& call);

 private:
  // An immutable version of the rules and auth policy; replaced, never
  // modified, so Decide works on a snapshot without holding mu_.
  struct State;

  // CheckAuth and Decide on a given version of the State.
  static std::optional<Decision> CheckAuthIn(const State& state,
                                             const CallView& call);
  Decision DecideIn(const State& state, const CallView& call);

  // Draws uniformly from [0, 1).
  double Draw();
  void Reseed(uint64_t seed);

  // Every call reads the current State; a lock-free load keeps rescripting
  // from ever making a call wait, and keeps calls off mu_ entirely.
  std::shared_ptr<const State> Snapshot() const;
  // Replaces the State; callers hold mu_ so that read-modify-write updates
  // (AddRule, SetAuthPolicy) do not lose each other's changes.
  void Publish(std::shared_ptr<const State> next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const uint64_t random_seed_;
  // Serializes writers; readers use Snapshot() instead.
  mutable absl::Mutex mu_;
  // Read with std::atomic_load (Snapshot) and written with std::atomic_store
  // (Publish) only.
  std::shared_ptr<const State> state_;
  // Numbers unnamed rules ("GetJob#3").
  uint64_t rules_added_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Mutex rng_mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(rng_mu_);
};

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_SCRIPT_H_
