#include "tests/scenarios/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"

extern char** environ;

namespace workflows {
namespace testing {
namespace {

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir != nullptr ? srcdir : ".", "/",
                      workspace != nullptr ? workspace : "workflows_grpc", "/",
                      path);
}

// Spawns the binary with stdout/stderr redirected to files.
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& args,
                            const std::string& stdout_path,
                            const std::string& stderr_path) {
  const std::string binary = ServerProcess::BinaryPath();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& arg : args) {
    argv.push_back(const_cast<char*>(arg.c_str()));
  }
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, stdout_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, stderr_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, binary.c_str(), &actions, nullptr,
                                argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) {
    return absl::InternalError(
        absl::StrCat("posix_spawn ", binary, ": ", strerror(error)));
  }
  return pid;
}

}  // namespace

std::string TempPath(const std::string& name) {
  static std::atomic<int> counter{0};
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", getpid(), "_",
                      counter.fetch_add(1), "_", name);
}

std::string ScenarioPath(const std::string& name) {
  return Runfile(absl::StrCat("fake_server/scenarios/", name, ".textproto"));
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

std::string ServerProcess::BinaryPath() {
  return Runfile("fake_server/workflows_fake_server");
}

std::string ServerProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

std::string ServerProcess::StdoutText() const { return ReadFile(stdout_path_); }
std::string ServerProcess::StderrText() const { return ReadFile(stderr_path_); }

void ServerProcess::StartReaper() {
  reaper_ = std::thread([this] {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    wait_status_ = status;
    exited_.Notify();
  });
}

absl::StatusOr<ProcessResult> ServerProcess::WaitForExit(
    absl::Duration timeout) {
  if (!exited_.WaitForNotificationWithTimeout(timeout)) {
    return absl::DeadlineExceededError(absl::StrCat(
        "workflows_fake_server (pid ", pid_, ") did not exit within ",
        absl::FormatDuration(timeout), "; stderr:\n", StderrText()));
  }
  if (reaper_.joinable()) reaper_.join();
  ProcessResult result;
  if (WIFEXITED(wait_status_)) {
    result.exit_code = WEXITSTATUS(wait_status_);
  } else if (WIFSIGNALED(wait_status_)) {
    result.signal = WTERMSIG(wait_status_);
  }
  result.stdout_text = StdoutText();
  result.stderr_text = StderrText();
  return result;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::vector<std::string>& args, absl::Duration ready_timeout) {
  std::unique_ptr<ServerProcess> process(new ServerProcess);
  const std::string port_file = TempPath("port");
  process->stdout_path_ = TempPath("stdout");
  process->stderr_path_ = TempPath("stderr");
  std::vector<std::string> all_args;
  bool has_listen = false;
  for (const std::string& arg : args) {
    has_listen = has_listen || absl::StartsWith(arg, "--listen");
  }
  if (!has_listen) all_args.push_back("--listen=127.0.0.1:0");
  all_args.push_back("--port_file=" + port_file);
  all_args.insert(all_args.end(), args.begin(), args.end());

  const absl::Time start = absl::Now();
  absl::StatusOr<pid_t> pid =
      Spawn(all_args, process->stdout_path_, process->stderr_path_);
  if (!pid.ok()) return pid.status();
  process->pid_ = *pid;
  process->StartReaper();
  // Readiness wait: the server writes the port file (atomically) only once
  // it is serving. Poll it, bounded by `ready_timeout`.
  for (;;) {
    const std::string contents = ReadFile(port_file);
    int port = 0;
    if (!contents.empty() &&
        absl::SimpleAtoi(absl::StripAsciiWhitespace(contents), &port)) {
      process->port_ = port;
      process->startup_time_ = absl::Now() - start;
      return process;
    }
    if (process->exited_.WaitForNotificationWithTimeout(
            absl::Milliseconds(5))) {
      absl::StatusOr<ProcessResult> result =
          process->WaitForExit(absl::ZeroDuration());
      return absl::FailedPreconditionError(absl::StrCat(
          "workflows_fake_server exited before serving (exit code ",
          result.ok() ? result->exit_code : -1, "); stderr:\n",
          process->StderrText()));
    }
    if (absl::Now() - start > ready_timeout) {
      return absl::DeadlineExceededError(
          absl::StrCat("workflows_fake_server wrote no port file (", port_file,
                       ") within ", absl::FormatDuration(ready_timeout),
                       "; stderr:\n", process->StderrText()));
    }
  }
}

absl::StatusOr<ProcessResult> ServerProcess::Run(
    const std::vector<std::string>& args, absl::Duration timeout) {
  std::unique_ptr<ServerProcess> process(new ServerProcess);
  process->stdout_path_ = TempPath("stdout");
  process->stderr_path_ = TempPath("stderr");
  absl::StatusOr<pid_t> pid =
      Spawn(args, process->stdout_path_, process->stderr_path_);
  if (!pid.ok()) return pid.status();
  process->pid_ = *pid;
  process->StartReaper();
  return process->WaitForExit(timeout);
}

absl::StatusOr<ProcessResult> ServerProcess::Stop(int signal,
                                                  absl::Duration timeout) {
  if (!exited_.HasBeenNotified()) kill(pid_, signal);
  return WaitForExit(timeout);
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0 && !exited_.HasBeenNotified()) kill(pid_, SIGKILL);
  if (reaper_.joinable()) reaper_.join();
}

}  // namespace testing
}  // namespace workflows
