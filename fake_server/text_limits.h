#ifndef WORKFLOWS_FAKE_SERVER_TEXT_LIMITS_H_
#define WORKFLOWS_FAKE_SERVER_TEXT_LIMITS_H_

// Limits on the textprotos the fake server parses from its users (scenario
// files, FakeControl.LoadScenario, a rule's match.request_textproto), and
// the one parse function that applies them. protobuf's text parser recurses
// once per nested message with no limit of its own, so a scenario nesting a
// message inside itself ~10,000 times overflowed the stack; the size cap
// keeps one careless upload from costing the server unbounded memory.
//
//   TextParseLimits limits;  // the defaults below
//   limits.max_depth = 500;  // or --max_scenario_depth=500
//   absl::Status parsed = ParseTextWithLimits(text, "my.textproto", limits,
//                                             &errors, nullptr, &scenario);

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/message.h"
#include "google/protobuf/text_format.h"

namespace workflows {
namespace fake {

struct TextParseLimits {
  // Deepest message nesting accepted, counting every `{` (a Scenario's own
  // fields are depth 1; `rules { behavior { reply { [...Job] { ... } } } }`
  // reaches 5 before the Job's fields). The same default as protobuf's
  // binary parser; real scenarios stay far below it. Flag:
  // --max_scenario_depth.
  int max_depth = 100;
  // Largest text accepted, in bytes. Flag: --max_scenario_bytes.
  int64_t max_bytes = int64_t{1} << 20;  // 1 MiB
};

// The limits used where none are passed: the defaults above unless the
// process set others (the standalone binary does, from its flags, before it
// serves). Thread-safe.
TextParseLimits DefaultTextParseLimits();
void SetDefaultTextParseLimits(const TextParseLimits& limits);

// Checks `limits` themselves: INVALID_ARGUMENT unless max_depth and
// max_bytes are positive (max_bytes also below 2 GiB, protobuf's limit).
absl::Status ValidateTextParseLimits(const TextParseLimits& limits);

// Parses `text` into `message` (cleared first) within `limits`. Text over
// max_bytes is INVALID_ARGUMENT before any parsing, e.g.
//   my.textproto: 2097152 bytes, over the limit of 1048576 bytes
//   (--max_scenario_bytes)
// Syntax errors go to `errors` (with 0-based line and column), and nesting
// deeper than max_depth is one of them, at the `{` that went too deep:
//   Message is too deep: nesting limit of 100 levels exceeded
//   (--max_scenario_depth)
// then the result is INVALID_ARGUMENT "<source>: not a valid <type>
// textproto" (callers report what `errors` collected instead). `errors` and
// `locations` may be null. On error `message` is left cleared.
absl::Status ParseTextWithLimits(
    absl::string_view text, absl::string_view source,
    const TextParseLimits& limits, google::protobuf::io::ErrorCollector* errors,
    google::protobuf::TextFormat::ParseInfoTree* locations,
    google::protobuf::Message* message);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_TEXT_LIMITS_H_
