#ifndef WORKFLOWS_FAKE_SERVER_SCENARIO_LOADER_H_
#define WORKFLOWS_FAKE_SERVER_SCENARIO_LOADER_H_

// Reading and checking scenario files (textproto of workflows.fake.Scenario,
// see scenario.proto and docs/scenarios.md). The server binary, the control
// service and tests all go through here, so a scenario gets the same errors
// wherever it comes from.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "fake_server/scenario.pb.h"
#include "fake_server/text_limits.h"

namespace workflows {
namespace fake {

// Parses and validates a scenario given as text. `source_name` (a file name,
// "control-service", ...) prefixes every error. Syntax errors are
// INVALID_ARGUMENT `source:line:column: message`, 1-based, naming the field
// (protobuf's "no field named" or our `(field "code")`) and quoting the line:
//
//   slow.textproto:3:9: Message type "workflows.fake.Rule" has no field
//   named "methd".
//     methd: "GetJob"
//           ^
//
// Semantic errors (see ValidateScenario) carry the position of the offending
// rule or entry. Any payloads use the expanded form:
//   reply { [type.googleapis.com/descarteslabs.workflows.Job] { id: "j" } }
//
//   absl::StatusOr<Scenario> s = ParseScenarioText(text, "inline");
//
// The text is parsed within `limits` (see text_limits.h; the two-argument
// form uses DefaultTextParseLimits()): more than max_bytes is refused before
// parsing, `source: N bytes, over the limit of M bytes
// (--max_scenario_bytes)`, and nesting deeper than max_depth is a syntax
// error at the `{` that went too deep, `source:line:column: Message is too
// deep: nesting limit of 100 levels exceeded (--max_scenario_depth)`.
absl::StatusOr<Scenario> ParseScenarioText(absl::string_view text,
                                           absl::string_view source_name);
absl::StatusOr<Scenario> ParseScenarioText(absl::string_view text,
                                           absl::string_view source_name,
                                           const TextParseLimits& limits);

// Reads `path` and parses it as above, naming errors after `path`. A missing
// file is NOT_FOUND, an unreadable one INVALID_ARGUMENT; both name the path.
// A file over max_bytes is refused before it is read.
absl::StatusOr<Scenario> LoadScenarioFile(const std::string& path);
absl::StatusOr<Scenario> LoadScenarioFile(const std::string& path,
                                          const TextParseLimits& limits);

// Checks everything a Script and the server would reject, all at once so a
// bad file changes nothing: each rule (see ValidateRule: known method —
// errors list the valid names —, request textprotos, Any types, status codes,
// durations, metadata), health entries (UNKNOWN, SERVING or NOT_SERVING, no
// service twice), the job progression (non-negative stage_duration, terminal
// stage SUCCEEDED, FAILED or CANCELLED), the seed (see fake_server/seed.h)
// and the auth policy. Every problem is reported,
// one per line, e.g.
//   slow.textproto: rules[2] (method "GetJbo"): unknown method "GetJbo"; did
//   you mean "GetJob"? valid: CancelJob, Check, ...
absl::Status ValidateScenario(const Scenario& scenario,
                              absl::string_view source_name);

// Combines several scenarios (the binary's repeated --scenario files) into
// one, so that loading stays a single all-or-nothing step. Later scenarios
// override earlier ones the way a later file would be expected to:
// - `rules` are concatenated in order, so later scenarios' rules are newer
//   and tried first;
// - `health` entries override per service (a later entry for a service
//   replaces the earlier one; others are kept);
// - `auth` and `job_progression`, when a later scenario has them, replace
//   the earlier ones wholesale (a later `auth { valid_tokens: "b" }` does
//   not keep an earlier file's tokens, as a field-by-field merge would);
// - `seed` entries (workflows, jobs, XYZs, grants, logs) are concatenated;
// - `random_seed` and `description`: the last one set wins;
// - `name` is the names joined with "+".
Scenario MergeScenarios(const std::vector<Scenario>& scenarios);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_SCENARIO_LOADER_H_
