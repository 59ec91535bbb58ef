// The standalone fake server as a shared CI service: bounded shutdown on
// SIGTERM with calls hung (exit 0 within the grace, journal written 0600),
// a second signal exiting at once, no symlink followed in
// --tls_self_signed_dir, and a control service that requires its token.

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>  // NOLINT: calls hung while the server shuts down.
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "fake_server/control.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/job.grpc.pb.h"
#include "testing/matchers.h"
#include "tests/scenarios/server_process.h"

namespace workflows {
namespace testing {
namespace {

namespace wf = ::descarteslabs::workflows;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

std::unique_ptr<fake::FakeControl::Stub> ControlOf(const ServerProcess& s) {
  return fake::FakeControl::NewStub(
      grpc::CreateChannel(s.address(), grpc::InsecureChannelCredentials()));
}

grpc::Status LoadScenario(fake::FakeControl::Stub& control,
                          const std::string& text,
                          const std::string& token = "") {
  grpc::ClientContext context;
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  fake::LoadScenarioRequest request;
  request.set_scenario_text(text);
  fake::LoadScenarioResponse response;
  return control.LoadScenario(&context, request, &response);
}

// Waits, on the server's side, until `count` GetJob calls are in flight.
grpc::Status WaitForHungGetJobs(fake::FakeControl::Stub& control, int count) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  fake::WaitForCallsRequest request;
  request.set_method("GetJob");
  request.set_count(count);
  request.set_in_flight(true);
  request.mutable_timeout()->set_seconds(30);
  fake::WaitForCallsResponse response;
  return control.WaitForCalls(&context, request, &response);
}

constexpr char kHangGetJob[] = R"pb(rules {
                                      method: "GetJob"
                                      behavior { hang: true }
                                    })pb";

TEST(ProcessSafetyTest, SigtermWithHungCallsExitsZeroWithinGrace) {
  const std::string journal = TempPath("hung_journal.textproto");
  constexpr absl::Duration kGrace = absl::Seconds(2);
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
      {"--journal=" + journal,
       "--shutdown_grace=" + absl::FormatDuration(kGrace)});
  ASSERT_TRUE(server.ok()) << server.status();
  auto control = ControlOf(**server);
  ASSERT_THAT(LoadScenario(*control, kHangGetJob),
              ::workflows::testing::IsOk());

  constexpr int kHung = 16;
  auto jobs = wf::JobAPI::NewStub(grpc::CreateChannel(
      (*server)->address(), grpc::InsecureChannelCredentials()));
  std::vector<grpc::StatusCode> codes(kHung, grpc::StatusCode::OK);
  std::vector<std::thread> threads;
  for (int i = 0; i < kHung; ++i) {
    threads.emplace_back([&, i] {
      grpc::ClientContext context;  // No deadline: only shutdown ends it.
      wf::GetJobRequest request;
      request.set_id(absl::StrCat("hung-", i));
      wf::Job job;
      codes[i] = jobs->GetJob(&context, request, &job).error_code();
    });
  }
  grpc::Status arrived = WaitForHungGetJobs(*control, kHung);
  ASSERT_TRUE(arrived.ok()) << arrived.error_message();

  const absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> result =
      (*server)->Stop(SIGTERM, kGrace + absl::Seconds(20));
  const absl::Duration took = absl::Now() - start;
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  // Hung calls end at once; the bound is the grace plus a loaded machine's
  // process exit.
  EXPECT_LT(took, kGrace + absl::Seconds(5));
  for (grpc::StatusCode code : codes) {
    EXPECT_EQ(code, grpc::StatusCode::UNAVAILABLE);
  }
  // Every hung call is in the journal, with the status its client saw; the
  // file is private.
  const std::string written = ReadFile(journal);
  for (int i = 0; i < kHung; ++i) {
    EXPECT_THAT(written, HasSubstr(absl::StrCat("hung-", i)));
  }
  EXPECT_THAT(written, HasSubstr("UNAVAILABLE"));
  struct stat info;
  ASSERT_EQ(stat(journal.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600);
}

TEST(ProcessSafetyTest, SecondSignalExitsAtOnceWithoutTheJournal) {
  const std::string journal = TempPath("second_signal_journal.textproto");
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--journal=" + journal, "--shutdown_grace=1h"});
  ASSERT_TRUE(server.ok()) << server.status();
  // Both signals pending when the process resumes: the lower-numbered
  // SIGINT starts the shutdown, SIGTERM is already waiting behind it.
  ASSERT_EQ(kill((*server)->pid(), SIGSTOP), 0);
  ASSERT_EQ(kill((*server)->pid(), SIGINT), 0);
  ASSERT_EQ(kill((*server)->pid(), SIGTERM), 0);
  absl::StatusOr<ProcessResult> result = (*server)->Stop(SIGCONT);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 128 + SIGTERM) << result->stderr_text;
  EXPECT_THAT(result->stderr_text,
              HasSubstr("second SIGTERM, exiting at once"));
}

TEST(ProcessSafetyTest, PlantedSymlinkAtServerKeyIsNotFollowed) {
  const std::string dir = TempPath("planted_tls");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  const std::string victim = TempPath("victim.txt");
  WriteFile(victim, "precious");
  ASSERT_EQ(symlink(victim.c_str(), (dir + "/server.key").c_str()), 0);
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--tls_self_signed_dir=" + dir});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(ReadFile(victim), "precious");
  struct stat info;
  ASSERT_EQ(lstat((dir + "/server.key").c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600);
  ASSERT_EQ(lstat((dir + "/ca.pem").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0644);
  absl::StatusOr<ProcessResult> result = (*server)->Stop(SIGTERM);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
}

TEST(ProcessSafetyTest, UnsafeSelfSignedDirectoryIsRefused) {
  const std::string real = TempPath("real_tls");
  ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
  const std::string link = TempPath("link_tls");
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  const std::string shared = TempPath("shared_tls");
  ASSERT_EQ(mkdir(shared.c_str(), 0700), 0);
  ASSERT_EQ(chmod(shared.c_str(), 0777), 0);
  for (const auto& [dir, problem] :
       {std::pair<std::string, std::string>{link, "symbolic link"},
        {shared, "writable by group or others"}}) {
    SCOPED_TRACE(dir);
    absl::StatusOr<ProcessResult> result =
        ServerProcess::Run({"--tls_self_signed_dir=" + dir});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2);
    EXPECT_THAT(
        result->stderr_text,
        AllOf(HasSubstr("--tls_self_signed_dir=" + dir), HasSubstr(problem)));
  }
  EXPECT_EQ(ReadFile(real + "/server.key"), "");
}

TEST(ProcessSafetyTest, ControlTokenIsRequiredByTheControlServiceOnly) {
  const std::string token_file = TempPath("control.token");
  constexpr char kToken[] = "ci-control-4f9a1e";
  WriteFile(token_file, absl::StrCat(kToken, "\n"));
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--control_token_file=" + token_file});
  ASSERT_TRUE(server.ok()) << server.status();
  auto control = ControlOf(**server);
  grpc::Status refused = LoadScenario(*control, kHangGetJob);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(refused.error_message(), HasSubstr("FakeControl"));
  grpc::Status wrong = LoadScenario(*control, kHangGetJob, "guess");
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(),
              AllOf(Not(HasSubstr(kToken)), Not(HasSubstr("guess"))));
  grpc::Status loaded =
      LoadScenario(*control, R"pb(rules {
                                    method: "GetJob"
                                    behavior { fail { code: "ABORTED" } }
                                  })pb",
                   kToken);
  EXPECT_TRUE(loaded.ok()) << loaded.error_message();
  // The Workflows services take no control token.
  auto jobs = wf::JobAPI::NewStub(grpc::CreateChannel(
      (*server)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  wf::GetJobRequest request;
  request.set_id("j");
  wf::Job job;
  EXPECT_EQ(jobs->GetJob(&context, request, &job).error_code(),
            grpc::StatusCode::ABORTED);
  absl::StatusOr<ProcessResult> result = (*server)->Stop(SIGTERM);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_THAT(result->stdout_text + result->stderr_text,
              Not(HasSubstr(kToken)));
}

TEST(ProcessSafetyTest, BadControlTokenFileOrGraceExitsTwo) {
  const std::string empty = TempPath("empty.token");
  WriteFile(empty, "\n");
  const std::string spaced = TempPath("spaced.token");
  WriteFile(spaced, "two words");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--control_token_file=" + empty, "empty"},
      {"--control_token_file=" + spaced, "not visible ASCII"},
      {"--control_token_file=/nonexistent/token", "cannot read"},
      {"--shutdown_grace=-1s", "--shutdown_grace"},
      {"--shutdown_grace=2h", "between 0s and 1h"},
  };
  for (const auto& [flag, expected] : cases) {
    SCOPED_TRACE(flag);
    absl::StatusOr<ProcessResult> result = ServerProcess::Run({flag});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2);
    EXPECT_THAT(result->stderr_text, HasSubstr(expected));
    EXPECT_THAT(result->stderr_text, Not(HasSubstr("two words")));
  }
}

}  // namespace
}  // namespace testing
}  // namespace workflows
