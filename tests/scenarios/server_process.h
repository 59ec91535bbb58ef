#ifndef WORKFLOWS_TESTS_SCENARIOS_SERVER_PROCESS_H_
#define WORKFLOWS_TESTS_SCENARIOS_SERVER_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <thread>  // NOLINT: the reaper waits in waitpid().
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace workflows {
namespace testing {

// How a finished workflows_fake_server process ended.
struct ProcessResult {
  // The exit code, or -1 if killed by a signal (then `signal` is set).
  int exit_code = -1;
  int signal = 0;
  std::string stdout_text;
  std::string stderr_text;
};

// ServerProcess runs the standalone fake server binary
// (//fake_server:workflows_fake_server, found in the test's runfiles) as a
// child process, for tests of the binary itself and of clients talking to it
// out of process. Start() passes --listen=127.0.0.1:0 and --port_file, and
// returns once the port file exists: a readiness wait bounded by
// `ready_timeout`, failing with the server's stderr if it exits first.
//
//   auto server = ServerProcess::Start(
//       {"--scenario=" + ScenarioPath("healthy")}).value();
//   std::string target = server->address();   // "127.0.0.1:40123"
//   ...
//   ProcessResult result = server->Stop(SIGTERM).value();
//   EXPECT_EQ(result.exit_code, 0);
class ServerProcess {
 public:
  // Starts the binary with `args` plus --listen/--port_file (unless `args`
  // has its own --listen).
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::vector<std::string>& args,
      absl::Duration ready_timeout = absl::Seconds(10));

  // Runs the binary with exactly `args` until it exits (e.g. to check the
  // errors of bad flags); kills it after `timeout`.
  static absl::StatusOr<ProcessResult> Run(
      const std::vector<std::string>& args,
      absl::Duration timeout = absl::Seconds(10));

  // Kills (SIGKILL) the process if still running.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  int port() const { return port_; }
  // "127.0.0.1:<port>".
  std::string address() const;
  pid_t pid() const { return pid_; }
  // How long Start() waited for the port file.
  absl::Duration startup_time() const { return startup_time_; }

  // Sends `signal` and waits up to `timeout` for the exit.
  absl::StatusOr<ProcessResult> Stop(
      int signal, absl::Duration timeout = absl::Seconds(10));

  // What the server wrote so far.
  std::string StdoutText() const;
  std::string StderrText() const;

  // Path of the binary in the runfiles.
  static std::string BinaryPath();

 private:
  ServerProcess() = default;

  // Reaps the child on a helper thread so that waits can time out.
  void StartReaper();
  absl::StatusOr<ProcessResult> WaitForExit(absl::Duration timeout);

  pid_t pid_ = -1;
  int port_ = 0;
  absl::Duration startup_time_;
  std::string stdout_path_;
  std::string stderr_path_;
  int wait_status_ = 0;
  absl::Notification exited_;
  std::thread reaper_;
};

// A per-test scratch path under $TEST_TMPDIR, unique within the process.
std::string TempPath(const std::string& name);

// Path of a ready-made scenario, e.g. ScenarioPath("slow") ->
// ".../fake_server/scenarios/slow.textproto".
std::string ScenarioPath(const std::string& name);

// Whole contents of a file ("" if unreadable).
std::string ReadFile(const std::string& path);

}  // namespace testing
}  // namespace workflows

#endif  // WORKFLOWS_TESTS_SCENARIOS_SERVER_PROCESS_H_
