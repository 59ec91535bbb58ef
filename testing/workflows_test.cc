#include "testing/workflows_test.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace workflows {
namespace testing {

WorkflowsTestBase::WorkflowsTestBase(WorkflowsTestOptions options,
                                     MockFlavor mock_flavor)
    : options_(std::move(options)), mock_flavor_(mock_flavor) {}

WorkflowsTestBase::~WorkflowsTestBase() { ShutDown(); }

void WorkflowsTestBase::SetUp() {
  clock_ = std::make_shared<SimulatedClock>();

  fake::FakeServerOptions server_options;
  server_options.transport = options_.transport;
  server_options.clock = clock_;
  server_options.wrap_backend = [this](
                                    std::shared_ptr<fake::Backend> in_memory) {
    // Strict has no fallthrough (see StrictWorkflowsTest).
    backend_ = MakeMockWorkflowsBackend(
        mock_flavor_,
        mock_flavor_ == MockFlavor::kStrict ? nullptr : std::move(in_memory));
    return std::static_pointer_cast<fake::Backend>(backend_);
  };
  if (options_.transport == fake::Transport::kTls) {
    absl::StatusOr<TestCertificateAuthority> ca =
        TestCertificateAuthority::Create();
    ASSERT_TRUE(ca.ok()) << ca.status();
    ca_.emplace(*std::move(ca));
    absl::StatusOr<fake::CertificateAndKey> cert = ca_->ServerCertificate();
    ASSERT_TRUE(cert.ok()) << cert.status();
    server_options.tls.cert_pem = cert->cert_pem;
    server_options.tls.key_pem = cert->key_pem;
  }
  if (options_.configure_server) options_.configure_server(server_options);

  absl::StatusOr<std::unique_ptr<fake::FakeWorkflowsServer>> server =
      fake::FakeWorkflowsServer::Start(std::move(server_options));
  ASSERT_TRUE(server.ok()) << "cannot start the fake server: "
                           << server.status();
  server_ = *std::move(server);
  if (options_.auth_policy.has_value()) {
    server_->script().SetAuthPolicy(*options_.auth_policy);
  }
  client_ = MakeClient(options_.configure_client);
}

ClientOptions WorkflowsTestBase::ClientOptionsForServer() {
  ClientOptions options;
  options.auth = options_.client_auth != nullptr
                     ? options_.client_auth
                     : std::make_shared<StaticTokenAuth>(kTestToken);
  options.clock = clock_;
  switch (server_->transport()) {
    case fake::Transport::kInProcess:
      options.channel = server_->InProcessChannel();
      options.send_token_on_insecure_channel = true;
      break;
    case fake::Transport::kInsecureTcp:
      options.host = "127.0.0.1";
      options.port = server_->port();
      options.use_insecure_channel = true;
      options.send_token_on_insecure_channel = true;
      break;
    case fake::Transport::kLocal:
      options.channel = server_->CreateChannel();
      options.channel_is_secure = true;  // local credentials carry tokens
      break;
    case fake::Transport::kTls:
      // The server listens on 127.0.0.1 only; dialling "localhost" could
      // resolve to ::1 first and fail with "Connection refused". The
      // override keeps hostname verification against the certificate's
      // "localhost" SAN.
      options.host = "127.0.0.1";
      options.port = server_->port();
      options.certificate = ca_->ca_pem();
      options.channel_arguments.SetSslTargetNameOverride(kTlsServerName);
      break;
  }
  return options;
}

std::unique_ptr<Client> WorkflowsTestBase::MakeClient(
    const std::function<void(ClientOptions&)>& configure) {
  ClientOptions options = ClientOptionsForServer();
  if (configure) configure(options);
  return std::make_unique<Client>(std::move(options));
}

void WorkflowsTestBase::TearDown() {
  if (server_ != nullptr) CheckNothingInFlight();
  // Stop the server before clearing the mock's expectations: it waits for its
  // handlers, and the handler of a call still in flight may be inside the
  // mock, copying or running an action (gMock does that outside its lock),
  // when VerifyAndClearExpectations deletes it. Found by ThreadSanitizer
  // (FixtureTest.TeardownFailsTheTestNamingRpcsLeftInFlight).
  StopClientAndServer();
  if (backend_ != nullptr) {
    ::testing::Mock::VerifyAndClearExpectations(backend_.get());
  }
  ShutDown();
}

void WorkflowsTestBase::CheckNothingInFlight() {
  // A handler may still be finishing a call its client already gave up on;
  // give such calls a moment to end before calling them leaked.
  if (server_->journal().WaitUntilIdle(options_.teardown_grace).ok()) return;
  std::vector<std::string> calls;
  for (const fake::Journal::InFlightCall& call :
       server_->journal().InFlight()) {
    calls.push_back(absl::StrCat(call.method, " (call #", call.sequence, ")"));
  }
  if (calls.empty()) return;
  ADD_FAILURE() << "RPCs still in flight when the test ended (after waiting "
                << absl::FormatDuration(options_.teardown_grace)
                << "); the server will cancel them: "
                << absl::StrJoin(calls, ", ")
                << ". Finish or cancel streams and calls before the test ends.";
}

void WorkflowsTestBase::StopClientAndServer() {
  if (client_ != nullptr) {
    client_->Close();
    client_.reset();
  }
  if (server_ != nullptr) {
    server_->Shutdown();
    server_.reset();
  }
}

void WorkflowsTestBase::ShutDown() {
  StopClientAndServer();
  backend_.reset();
}

WorkflowsTestOptions WorkflowsTlsTest::TlsOptions() {
  WorkflowsTestOptions options;
  options.transport = fake::Transport::kTls;
  return options;
}

WorkflowsTestOptions WorkflowsAuthTest::AuthOptions() {
  WorkflowsTestOptions options = WorkflowsTlsTest::TlsOptions();
  fake::AuthPolicy policy;
  policy.set_require_bearer_token(true);
  policy.add_valid_tokens(kTestToken);
  options.auth_policy = policy;
  return options;
}

ScopedDefaultClient::ScopedDefaultClient(std::shared_ptr<Client> client)
    : previous_(Client::ExchangeDefaultClient(std::move(client))) {}

ScopedDefaultClient::~ScopedDefaultClient() {
  Client::SetDefaultClient(std::move(previous_));
}

}  // namespace testing
}  // namespace workflows
