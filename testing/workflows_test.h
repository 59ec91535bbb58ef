#ifndef WORKFLOWS_TESTING_WORKFLOWS_TEST_H_
#define WORKFLOWS_TESTING_WORKFLOWS_TEST_H_

// gtest fixtures with a started FakeWorkflowsServer, a connected
// workflows::Client and one SimulatedClock shared by both. The server's
// backend is a MockWorkflowsBackend that falls through to the in-memory
// backend, so tests script only what they care about:
//
//   class JobRunnerTest : public workflows::testing::WorkflowsTest {};
//
//   TEST_F(JobRunnerTest, RetriesUnavailable) {
//     EXPECT_CALL(backend(), GetJob)
//         .WillOnce(ReturnStatus(grpc::StatusCode::UNAVAILABLE, "down"))
//         .WillOnce(ReplyText("id: 'j1' state { stage: SUCCEEDED }"));
//     GetJobRequest request;
//     request.set_id("j1");
//     EXPECT_THAT(client().GetJob(request), IsOk());
//     EXPECT_THAT(clock().sleeps(), SizeIs(1));  // one backoff, no real wait
//   }
//
// Teardown cannot be forgotten: TearDown() verifies the mock's expectations,
// fails the test if RPCs are still in flight (naming them), closes the client
// and shuts the server down. Variants: WorkflowsTlsTest (TLS with a run-time
// CA), WorkflowsAuthTest (TLS, bearer token required), and the gMock flavours
// NiceWorkflowsTest (the default, WorkflowsTest), NaggyWorkflowsTest and
// StrictWorkflowsTest for unexpected calls.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "client/client.h"
#include "client/clock.h"
#include "fake_server/fake_workflows_server.h"
#include "fake_server/in_memory_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testing/actions.h"
#include "testing/mock_workflows_backend.h"
#include "testing/test_certificate_authority.h"

namespace workflows {
namespace testing {

// How a WorkflowsTest sets things up.
struct WorkflowsTestOptions {
  // kInProcess (default, fastest), kTls (a TestCertificateAuthority signs a
  // localhost certificate the client trusts; the client dials 127.0.0.1 and
  // verifies the name "localhost"), kLocal or kInsecureTcp.
  fake::Transport transport = fake::Transport::kInProcess;
  // The token source of the client. Default: StaticTokenAuth("test-token").
  // Over in-process and plaintext channels the token is sent as plain
  // metadata, so auth policies work on every transport.
  std::shared_ptr<Auth> client_auth;
  // An auth policy the server enforces from the start. fake::AuthPolicy is
  // generated from fake_server/scenario.proto: a test that sets this needs
  // @workflows_grpc//fake_server:scenario_cc_proto in its deps and
  // #include "fake_server/scenario.pb.h" (see docs/cookbook.md).
  std::optional<fake::AuthPolicy> auth_policy;
  // Last say over the client's options.
  std::function<void(ClientOptions&)> configure_client;
  // Last say over the server's options.
  std::function<void(fake::FakeServerOptions&)> configure_server;
  // How long TearDown waits for calls still running to end before it fails
  // the test (e.g. a server handler noticing its client went away).
  absl::Duration teardown_grace = absl::Seconds(2);
};

// The fixture logic; use WorkflowsTest & co.
class WorkflowsTestBase : public ::testing::Test {
 public:
  // The token WorkflowsTest clients send unless told otherwise.
  static constexpr char kTestToken[] = "test-token";
  // With kTls the client dials 127.0.0.1 (where the server listens) and
  // checks the server certificate against this name.
  static constexpr char kTlsServerName[] = "localhost";

  // Accessors; valid between SetUp() and TearDown().
  fake::FakeWorkflowsServer& server() { return *server_; }
  Client& client() { return *client_; }
  const std::shared_ptr<Client>& shared_client() { return client_; }
  SimulatedClock& clock() { return *clock_; }
  const std::shared_ptr<SimulatedClock>& shared_clock() { return clock_; }
  MockWorkflowsBackend& backend() { return *backend_; }
  fake::InMemoryBackend& in_memory() { return *server_->in_memory_backend(); }
  fake::Journal& journal() { return server_->journal(); }
  // An action answering as the in-memory backend does, for "fail twice, then
  // behave normally" (see PassThrough in testing/actions.h):
  //   EXPECT_CALL(backend(), GetJob).WillRepeatedly(FailTimesThen(
  //       2, ReturnStatus(grpc::StatusCode::UNAVAILABLE), PassThrough()));
  auto PassThrough() { return testing::PassThrough(&in_memory()); }
  // Forwarding to another backend (the member above hides the free
  // function's overloads in test bodies).
  auto PassThrough(fake::Backend* target) {
    return testing::PassThrough(target);
  }
  // Only with transport kTls.
  TestCertificateAuthority& certificate_authority() { return *ca_; }

  // Options for a client of this fixture's server (channel, TLS roots, auth,
  // clock), to adjust and pass to Client; MakeClient() does both.
  ClientOptions ClientOptionsForServer();
  std::unique_ptr<Client> MakeClient(
      const std::function<void(ClientOptions&)>& configure = nullptr);

 protected:
  WorkflowsTestBase(WorkflowsTestOptions options, MockFlavor mock_flavor);
  ~WorkflowsTestBase() override;

  void SetUp() override;
  void TearDown() override;

 private:
  void CheckNothingInFlight();
  void StopClientAndServer();
  // StopClientAndServer(), then drops the mock backend.
  void ShutDown();

  const WorkflowsTestOptions options_;
  const MockFlavor mock_flavor_;
  std::shared_ptr<SimulatedClock> clock_;
  std::optional<TestCertificateAuthority> ca_;
  std::shared_ptr<MockWorkflowsBackend> backend_;
  std::unique_ptr<fake::FakeWorkflowsServer> server_;
  std::shared_ptr<Client> client_;
};

// A WorkflowsTest whose mock backend has gMock flavour `Flavor`
// (::testing::NiceMock, NaggyMock or StrictMock), as in gMock:
//   - Nice: a call no EXPECT_CALL is about silently reaches the in-memory
//     backend;
//   - Naggy: it reaches the in-memory backend too, and gMock prints a
//     "GMOCK WARNING: Uninteresting mock function call" naming the method
//     and the request;
//   - Strict: it fails the test with the method and the request, and the
//     client gets UNIMPLEMENTED at once. Strict has no fallthrough because a
//     plausible in-memory answer would hide the unscripted call from the
//     code under test; script fallthrough explicitly where wanted, e.g.
//     .WillOnce(Invoke(&in_memory(), &fake::InMemoryBackend::GetJob)).
// In every flavour a call that matches none of its method's EXPECT_CALLs
// fails the test with the request and each expectation's mismatch, then
// answers as above.
//
//   class StrictJobTest : public workflows::testing::StrictWorkflowsTest {};
//
//   TEST_F(StrictJobTest, OnlyGetJob) {
//     EXPECT_CALL(backend(), GetJob(_, EqualsProto("id: 'j1'"), _))
//         .WillOnce(ReplyText("id: 'j1'"));
//     EXPECT_THAT(CodeUnderTest(client()), IsOk());  // any other RPC fails
//   }
template <template <typename> class Flavor>
class BasicWorkflowsTest : public WorkflowsTestBase {
 protected:
  explicit BasicWorkflowsTest(WorkflowsTestOptions options = {})
      : WorkflowsTestBase(std::move(options), kFlavor) {}

 private:
  static constexpr MockFlavor kFlavor =
      std::is_same_v<Flavor<MockWorkflowsBackend>,
                     ::testing::StrictMock<MockWorkflowsBackend>>
          ? MockFlavor::kStrict
      : std::is_same_v<Flavor<MockWorkflowsBackend>,
                       ::testing::NaggyMock<MockWorkflowsBackend>>
          ? MockFlavor::kNaggy
          : MockFlavor::kNice;
};

using NiceWorkflowsTest = BasicWorkflowsTest<::testing::NiceMock>;
using NaggyWorkflowsTest = BasicWorkflowsTest<::testing::NaggyMock>;
using StrictWorkflowsTest = BasicWorkflowsTest<::testing::StrictMock>;
// The default: unscripted calls silently reach the in-memory backend.
using WorkflowsTest = NiceWorkflowsTest;

// TLS on loopback with a certificate from a run-time TestCertificateAuthority
// that the client trusts; the bearer token crosses the wire as real call
// credentials.
class WorkflowsTlsTest : public WorkflowsTest {
 public:
  static WorkflowsTestOptions TlsOptions();

 protected:
  WorkflowsTlsTest() : WorkflowsTest(TlsOptions()) {}
};

// TLS, and the server requires "authorization: Bearer test-token".
class WorkflowsAuthTest : public WorkflowsTest {
 public:
  static WorkflowsTestOptions AuthOptions();

 protected:
  WorkflowsAuthTest() : WorkflowsTest(AuthOptions()) {}
};

// Makes `client` the process-wide default client (Client::GetDefaultClient)
// for the scope, for code under test that uses the default client. On exit
// the previous default is put back (none, if there was none, so the next
// GetDefaultClient() builds a fresh one). Scopes nest.
//
//   ScopedDefaultClient scoped(shared_client());
//   EXPECT_THAT(CodeUsingTheDefaultClient(), IsOk());
class ScopedDefaultClient {
 public:
  explicit ScopedDefaultClient(std::shared_ptr<Client> client);
  ~ScopedDefaultClient();
  ScopedDefaultClient(const ScopedDefaultClient&) = delete;
  ScopedDefaultClient& operator=(const ScopedDefaultClient&) = delete;

 private:
  std::shared_ptr<Client> previous_;
};

}  // namespace testing
}  // namespace workflows

#endif  // WORKFLOWS_TESTING_WORKFLOWS_TEST_H_
