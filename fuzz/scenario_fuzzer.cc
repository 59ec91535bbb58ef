// libFuzzer target: scenario textproto parsing, validation and loading.
//
// The input is a scenario file's text. Whatever it is, parsing must not
// crash; and a scenario that ParseScenarioText accepts has passed
// ValidateScenario, so (as scenario_loader.h promises) a Script and a running
// FakeWorkflowsServer must load it too, and its printed form must parse back
// to the same message.
//
// Scenario text is parsed with a 16 KiB cap (the default is 1 MiB) so that
// inputs within run_fuzzers.sh's -max_len reach it; the depth limit is the
// default 100, which a few hundred bytes of nesting reach.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "client/clock.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/scenario.pb.h"
#include "fake_server/scenario_loader.h"
#include "fake_server/script.h"
#include "fake_server/text_limits.h"
#include "fuzz/fuzz_check.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/message_differencer.h"

namespace workflows {
namespace fake {
namespace {

// One in-process server for the whole run: starting one per input would
// dominate the time per input. Reset() after each input keeps inputs
// independent.
FakeWorkflowsServer& Server() {
  static FakeWorkflowsServer* const server = [] {
    FakeServerOptions options;
    options.transport = Transport::kInProcess;
    options.clock = std::make_shared<SimulatedClock>();
    absl::StatusOr<std::unique_ptr<FakeWorkflowsServer>> started =
        FakeWorkflowsServer::Start(std::move(options));
    FUZZ_CHECK(started.ok(), started.status().ToString());
    return started->release();  // Never destroyed: lives as long as the run.
  }();
  return *server;
}

constexpr TextParseLimits kFuzzParseLimits = {.max_depth = 100,
                                              .max_bytes = 16 << 10};

void FuzzScenario(absl::string_view text) {
  // Also the limits of Script's request_textproto parses.
  static const bool limits_set = [] {
    SetDefaultTextParseLimits(kFuzzParseLimits);
    return true;
  }();
  (void)limits_set;
  absl::StatusOr<Scenario> scenario =
      ParseScenarioText(text, "fuzz", kFuzzParseLimits);
  if (!scenario.ok()) {
    FUZZ_CHECK(scenario.status().code() == absl::StatusCode::kInvalidArgument,
               "parse errors are INVALID_ARGUMENT, got ",
               scenario.status().ToString());
    FUZZ_CHECK(!scenario.status().message().empty(), "empty error message");
    return;
  }
  const absl::Status valid = ValidateScenario(*scenario, "fuzz");
  FUZZ_CHECK(valid.ok(),
             "parsed scenario fails validation: ", valid.ToString());

  Script script(/*random_seed=*/1);
  const absl::Status loaded = script.Load(*scenario);
  FUZZ_CHECK(loaded.ok(),
             "valid scenario does not load into a Script: ", loaded.ToString());
  for (const Rule& rule : scenario->rules()) {
    const absl::Status added = script.AddRule(rule);
    FUZZ_CHECK(added.ok(),
               "valid rule is refused by AddRule: ", added.ToString());
  }

  FakeWorkflowsServer& server = Server();
  const absl::Status applied = server.LoadScenario(*scenario);
  server.Reset();
  // ValidateScenario checks seeds with the same backend the server uses
  // (fuzz finding 1), so a scenario that validates must load.
  FUZZ_CHECK(applied.ok(),
             "valid scenario is refused by the server: ", applied.ToString());

  // The printed form is what users get from tools that dump scenarios; it
  // must read back as the same scenario.
  std::string printed;
  FUZZ_CHECK(google::protobuf::TextFormat::PrintToString(*scenario, &printed),
             "cannot print the scenario");
  // Printing indents, so the printed form may outgrow the size cap; its
  // nesting is the same.
  TextParseLimits printed_limits = kFuzzParseLimits;
  printed_limits.max_bytes = std::numeric_limits<int32_t>::max();
  absl::StatusOr<Scenario> reparsed =
      ParseScenarioText(printed, "printed", printed_limits);
  FUZZ_CHECK(reparsed.ok(),
             "printed scenario does not parse: ", reparsed.status().ToString(),
             "\n", printed);
  FUZZ_CHECK(
      google::protobuf::util::MessageDifferencer::Equals(*scenario, *reparsed),
      "printed scenario parses differently:\n", printed);
}

}  // namespace
}  // namespace fake
}  // namespace workflows

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  workflows::fake::FuzzScenario(
      absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
