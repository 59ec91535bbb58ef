#ifndef WORKFLOWS_CLIENT_WARNING_SINK_H_
#define WORKFLOWS_CLIENT_WARNING_SINK_H_

// Where the library's warnings go: the x-wf-warnings a server sends to the
// client ("Workflows warning (GetJob): ..."), and the fake server's notes on
// misuse it survives (initial metadata added too late, a stream message of
// the wrong type). By default each warning is one line on stderr, as before;
// an application or a test can send them elsewhere:
//
//   std::vector<std::string> seen;
//   workflows::ScopedWarningSink capture(
//       [&seen](absl::string_view warning) { seen.emplace_back(warning); });
//   client.GetJob(request);  // a warning from the server lands in `seen`
//
// Or, process-wide, e.g. into the application's own log:
//
//   workflows::SetWarningSink([](absl::string_view warning) {
//     MyLog(kWarning) << warning;
//   });
//
// Warnings carry no trailing newline. Errors the library returns are
// absl::Status values and never go through the sink; a command-line tool's
// usage messages are not warnings either.

#include <functional>

#include "absl/strings/string_view.h"

namespace workflows {

// Receives one warning. Called from whichever thread noticed it (client
// calls, server handler threads), possibly concurrently: a sink must be
// thread-safe. It must not block for long; it may call SetWarningSink.
using WarningSink = std::function<void(absl::string_view warning)>;

// The sink used until one is set: writes the warning and "\n" to stderr in one
// write.
void WriteWarningToStderr(absl::string_view warning);

// Makes `sink` receive every later warning, process-wide, and returns the
// previous sink (never empty). An empty `sink` restores the stderr default.
// Thread-safe. A warning being delivered while the sink is replaced may still
// reach the previous sink.
WarningSink SetWarningSink(WarningSink sink);

// Sends `warning` to the current sink. Thread-safe. For library code.
void EmitWarning(absl::string_view warning);

// Installs a sink for the lifetime of the object and puts the previous one
// back on destruction. Scopes nest (destroy them in reverse order).
class ScopedWarningSink {
 public:
  explicit ScopedWarningSink(WarningSink sink)
      : previous_(SetWarningSink(std::move(sink))) {}
  ~ScopedWarningSink() { SetWarningSink(std::move(previous_)); }
  ScopedWarningSink(const ScopedWarningSink&) = delete;
  ScopedWarningSink& operator=(const ScopedWarningSink&) = delete;

 private:
  WarningSink previous_;
};

}  // namespace workflows

#endif  // WORKFLOWS_CLIENT_WARNING_SINK_H_
