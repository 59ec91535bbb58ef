// Tests of workflows_fake_server as a process: flags and their errors (exit
// code 2 naming the flag or file), graceful shutdown on SIGTERM/SIGINT with
// the journal written, --log_calls, TLS and mTLS.

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>  // NOLINT: a call running while the server shuts down.
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "fake_server/certificates.h"
#include "fake_server/control.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/workflow.grpc.pb.h"
#include "testing/matchers.h"
#include "tests/scenarios/server_process.h"

namespace workflows {
namespace testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

struct BadFlagCase {
  std::vector<std::string> args;
  std::vector<std::string> expected;  // substrings of stderr
};

TEST(StandaloneBinaryTest, BadFlagsAndFilesExitTwoNamingThem) {
  const std::string bad_scenario = TempPath("bad.textproto");
  WriteFile(bad_scenario, "name: \"bad\"\nrules {\n  methd: \"GetJob\"\n}\n");
  const std::string unknown_method = TempPath("unknown.textproto");
  WriteFile(unknown_method,
            "rules {\n  method: \"GetJbo\"\n  behavior { hang: true }\n}\n");
  const std::string not_pem = TempPath("not.pem");
  WriteFile(not_pem, "hello");
  const std::vector<BadFlagCase> cases = {
      {{"--bogus"}, {"unknown flag --bogus"}},
      {{"positional"}, {"positional"}},
      {{"--listen=nonsense"}, {"--listen=nonsense", "HOST:PORT"}},
      {{"--listen=127.0.0.1:70000"}, {"--listen"}},
      {{"--listen=8.8.8.8:0"}, {"--listen", "--allow_non_loopback"}},
      {{"--listen"}, {"--listen needs a value"}},
      {{"--log_calls=maybe"}, {"--log_calls"}},
      {{"--tls_cert=/x.pem"}, {"--tls_cert needs --tls_key"}},
      {{"--client_ca=/x.pem"}, {"--client_ca needs TLS"}},
      {{"--tls_cert=/nonexistent/cert.pem", "--tls_key=/nonexistent/key.pem"},
       {"--tls_cert=/nonexistent/cert.pem"}},
      {{"--tls_cert=" + not_pem, "--tls_key=" + not_pem},
       {"--tls_cert=" + not_pem}},
      {{"--journal=/nonexistent/dir/journal.textproto"}, {"--journal"}},
      {{"--port_file=/nonexistent/dir/port"}, {"--port_file"}},
      {{"--scenario=/nonexistent/s.textproto"},
       {"--scenario", "/nonexistent/s.textproto"}},
      {{"--scenario=" + bad_scenario}, {bad_scenario + ":3:", "methd"}},
      {{"--scenario=" + unknown_method}, {"GetJbo", "GetJob", "WatchJob"}},
  };
  for (const BadFlagCase& c : cases) {
    SCOPED_TRACE(absl::StrJoin(c.args, " "));
    absl::StatusOr<ProcessResult> result = ServerProcess::Run(c.args);
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2) << result->stderr_text;
    for (const std::string& expected : c.expected) {
      EXPECT_THAT(result->stderr_text, HasSubstr(expected));
    }
  }
}

TEST(StandaloneBinaryTest, HelpListsTheFlags) {
  absl::StatusOr<ProcessResult> result = ServerProcess::Run({"--help"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  for (const char* flag : {"--listen", "--port_file", "--tls_cert", "--tls_key",
                           "--client_ca", "--tls_self_signed_dir", "--scenario",
                           "--journal", "--log_calls", "--allow_non_loopback",
                           "--allow_remote_control", "--simulated_clock"}) {
    EXPECT_THAT(result->stdout_text, HasSubstr(flag));
  }
}

TEST(StandaloneBinaryTest, SigtermExitsZeroAndWritesTheJournal) {
  const std::string journal = TempPath("journal.textproto");
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--journal=" + journal, "--log_calls"});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->StdoutText(),
              HasSubstr(absl::StrCat("serving on ", (*server)->address())));
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = (*server)->port();
  options.use_insecure_channel = true;
  Client client(options);
  wf::GetJobRequest request;
  request.set_id("no-such-job");
  EXPECT_EQ(client.GetJob(request).status().code(),
            absl::StatusCode::kNotFound);

  absl::StatusOr<ProcessResult> result = (*server)->Stop(SIGTERM);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_THAT(result->stderr_text, HasSubstr("SIGTERM"));
  // --log_calls: one line for the call.
  EXPECT_THAT(result->stderr_text,
              AllOf(HasSubstr("call /descarteslabs.workflows.JobAPI/GetJob "),
                    HasSubstr("status=NOT_FOUND")));
  const std::string written = ReadFile(journal);
  EXPECT_THAT(written, HasSubstr("/descarteslabs.workflows.JobAPI/GetJob"));
  EXPECT_THAT(written, HasSubstr("NOT_FOUND"));
}

TEST(StandaloneBinaryTest, SigintEndsInFlightCallsAndExitsZero) {
  const std::string journal = TempPath("journal.textproto");
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--journal=" + journal});
  ASSERT_TRUE(server.ok()) << server.status();
  auto control = fake::FakeControl::NewStub(grpc::CreateChannel(
      (*server)->address(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext context;
    fake::LoadScenarioRequest request;
    request.set_scenario_text(R"pb(rules {
                                     method: "GetJob"
                                     behavior { hang: true }
                                   })pb");
    fake::LoadScenarioResponse response;
    grpc::Status loaded = control->LoadScenario(&context, request, &response);
    ASSERT_TRUE(loaded.ok()) << loaded.error_message();
  }
  // A call that would hang forever; the shutdown must end it.
  auto jobs = wf::JobAPI::NewStub(grpc::CreateChannel(
      (*server)->address(), grpc::InsecureChannelCredentials()));
  grpc::Status hung_status;
  std::thread hung([&] {
    grpc::ClientContext context;
    wf::GetJobRequest request;
    request.set_id("x");
    wf::Job job;
    hung_status = jobs->GetJob(&context, request, &job);
  });
  {
    // Wait until the server holds the call: the server-side view, no sleep.
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    fake::WaitForCallsRequest request;
    request.set_method("GetJob");
    request.set_count(1);
    request.set_in_flight(true);
    fake::WaitForCallsResponse response;
    grpc::Status arrived = control->WaitForCalls(&context, request, &response);
    ASSERT_TRUE(arrived.ok()) << arrived.error_message();
  }
  const absl::Time start = absl::Now();
  absl::StatusOr<ProcessResult> result = (*server)->Stop(SIGINT);
  hung.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->stderr_text;
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_FALSE(hung_status.ok());
  EXPECT_THAT(result->stderr_text, HasSubstr("SIGINT"));
  EXPECT_FALSE(ReadFile(journal).empty());
}

TEST(StandaloneBinaryTest, SelfSignedTls) {
  const std::string dir = TempPath("tls");
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--tls_self_signed_dir=" + dir});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->StdoutText(), HasSubstr("(TLS)"));
  ClientOptions options;
  options.host = "localhost";
  options.port = (*server)->port();
  options.certificate = ReadFile(dir + "/ca.pem");
  options.auth = std::make_shared<StaticTokenAuth>("token");
  Client client(options);
  absl::StatusOr<health::HealthCheckResponse::ServingStatus> health =
      client.Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, health::HealthCheckResponse::SERVING);

  // A client that does not trust the minted CA is refused.
  ClientOptions untrusting = options;
  untrusting.certificate = fake::CertificateAuthority::Create()->ca_pem();
  Client stranger(untrusting);
  CallOptions once;
  once.retry = RetryPolicy::None();
  EXPECT_FALSE(stranger.Health(absl::Seconds(5), once).ok());
}

TEST(StandaloneBinaryTest, ClientCaRequiresClientCertificates) {
  absl::StatusOr<fake::CertificateAuthority> ca =
      fake::CertificateAuthority::Create();
  ASSERT_TRUE(ca.ok()) << ca.status();
  fake::CertificateOptions server_options;
  server_options.dns_names = {"localhost"};
  server_options.ip_addresses = {"127.0.0.1"};
  absl::StatusOr<fake::CertificateAndKey> server_cert =
      ca->Issue(server_options);
  ASSERT_TRUE(server_cert.ok()) << server_cert.status();
  fake::CertificateOptions client_options;
  client_options.common_name = "ci-client";
  client_options.usage = fake::CertificateUsage::kClient;
  absl::StatusOr<fake::CertificateAndKey> client_cert =
      ca->Issue(client_options);
  ASSERT_TRUE(client_cert.ok()) << client_cert.status();
  const std::string cert = TempPath("server.pem");
  const std::string key = TempPath("server.key");
  const std::string client_ca = TempPath("client_ca.pem");
  WriteFile(cert, server_cert->cert_pem);
  WriteFile(key, server_cert->key_pem);
  WriteFile(client_ca, ca->ca_pem());
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
      {"--tls_cert=" + cert, "--tls_key=" + key, "--client_ca=" + client_ca});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->StdoutText(), HasSubstr("mTLS"));

  grpc::SslCredentialsOptions anonymous;
  anonymous.pem_root_certs = ca->ca_pem();
  grpc::ChannelArguments arguments;
  arguments.SetSslTargetNameOverride("localhost");
  auto refused = health::Health::NewStub(grpc::CreateCustomChannel(
      (*server)->address(), grpc::SslCredentials(anonymous), arguments));
  {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    health::HealthCheckResponse response;
    EXPECT_FALSE(
        refused->Check(&context, health::HealthCheckRequest(), &response).ok());
  }
  grpc::SslCredentialsOptions with_cert = anonymous;
  with_cert.pem_cert_chain = client_cert->cert_pem;
  with_cert.pem_private_key = client_cert->key_pem;
  auto accepted = health::Health::NewStub(grpc::CreateCustomChannel(
      (*server)->address(), grpc::SslCredentials(with_cert), arguments));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  health::HealthCheckResponse response;
  grpc::Status status =
      accepted->Check(&context, health::HealthCheckRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status(), health::HealthCheckResponse::SERVING);
}

TEST(StandaloneBinaryTest, RepeatedScenariosAreMerged) {
  absl::StatusOr<std::unique_ptr<ServerProcess>> server =
      ServerProcess::Start({"--scenario=" + ScenarioPath("not_serving"),
                            "--scenario=" + ScenarioPath("warnings")});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->StdoutText(), HasSubstr("not_serving+warnings"));
  ClientOptions options;
  options.host = "127.0.0.1";
  options.port = (*server)->port();
  options.use_insecure_channel = true;
  Client client(options);
  absl::StatusOr<health::HealthCheckResponse::ServingStatus> health =
      client.Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, health::HealthCheckResponse::NOT_SERVING);
  wf::GetWorkflowRequest request;
  request.set_id("ci@example.com:ndvi");
  CallResult<wf::Workflow> workflow = client.GetWorkflow(request);
  ASSERT_TRUE(workflow.ok()) << workflow.status();
  EXPECT_EQ(workflow.warnings().size(), 2u);
}

// A later file's auth policy replaces an earlier one wholesale: with the old
// field-by-field merge, auth_required's good-token (and its viewer-token
// refusal) stayed in force next to the later file's token.
TEST(StandaloneBinaryTest, LaterScenarioAuthReplacesTheEarlierOne) {
  const std::string later = TempPath("other_token.textproto");
  WriteFile(later,
            "name: \"other_token\"\nauth { valid_tokens: \"other-token\" }\n");
  absl::StatusOr<std::unique_ptr<ServerProcess>> server = ServerProcess::Start(
      {"--scenario=" + ScenarioPath("auth_required"), "--scenario=" + later});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = wf::WorkflowAPI::NewStub(grpc::CreateChannel(
      (*server)->address(), grpc::InsecureChannelCredentials()));
  auto call_with = [&](const std::string& token) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    // Plain metadata: call credentials are not sent over plaintext.
    context.AddMetadata("authorization", "Bearer " + token);
    wf::WmtsUrlTemplateResponse response;
    return stub->GetWmtsUrlTemplate(&context, wf::Empty(), &response);
  };
  EXPECT_THAT(call_with("other-token"), ::workflows::testing::IsOk());
  for (const char* token : {"good-token", "viewer-token"}) {
    SCOPED_TRACE(token);
    const grpc::Status refused = call_with(token);
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_THAT(refused.error_message(), HasSubstr("invalid bearer token"));
  }
}

}  // namespace
}  // namespace testing
}  // namespace workflows
