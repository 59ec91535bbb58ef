// The auth matrix: what the caller sees for a missing, wrong, expired or
// under-privileged token, over TLS so the token is a real call credential.

#include <memory>

#include "client/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest-spi.h"
#include "gtest/gtest.h"
#include "proto/job.grpc.pb.h"
#include "testing/actions.h"
#include "testing/auth_fakes.h"
#include "testing/matchers.h"
#include "testing/waits.h"
#include "testing/workflows_test.h"

namespace workflows {
namespace {

using ::descarteslabs::workflows::GetWorkflowRequest;
using ::descarteslabs::workflows::JobAPI;
using ::testing::_;
using ::testing::AllOf;
using ::testing::AnyNumber;
using testing::CountingAuth;
using testing::EqualsProto;
using testing::ExpiringTokenAuth;
using testing::FailingAuth;
using testing::HasBearerToken;
using testing::HasMetadata;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::IsOk;
using testing::IsOkAndHolds;
using testing::Partially;
using testing::ReplyText;
using ::testing::SizeIs;
using testing::StatusIs;
using testing::WaitForCalls;

class AuthTest : public testing::WorkflowsAuthTest {
 protected:
  void SetUp() override {
    WorkflowsAuthTest::SetUp();
    fake::AuthPolicy policy;
    policy.set_require_bearer_token(true);
    policy.add_valid_tokens(kTestToken);
    policy.add_valid_tokens("viewer-token");
    policy.add_expired_tokens("expired-token");
    policy.add_permission_denied_tokens("viewer-token");
    server().script().SetAuthPolicy(policy);
  }

  CallResult<descarteslabs::workflows::Workflow> GetWorkflowWith(
      std::shared_ptr<Auth> auth) {
    std::unique_ptr<Client> other =
        MakeClient([&](ClientOptions& options) { options.auth = auth; });
    GetWorkflowRequest request;
    request.set_id("nobody@example.com:missing");
    return other->GetWorkflow(request, {.retry = RetryPolicy::None()});
  }
};

TEST_F(AuthTest, ValidTokenCrossesTheWire) {
  GetWorkflowRequest request;
  request.set_id("nobody@example.com:missing");
  EXPECT_THAT(client().GetWorkflow(request),
              StatusIs(absl::StatusCode::kNotFound));  // past auth
  EXPECT_THAT(journal().Calls("GetWorkflow").at(0), HasBearerToken(kTestToken));
}

// The documented use of the metadata matchers: on the CallContext* argument
// of an EXPECT_CALL, so the mock answers only calls that carried the token.
TEST_F(AuthTest, ExpectCallMatchesTheBearerTokenThatCrossedTheWire) {
  EXPECT_CALL(backend(),
              GetWorkflow(AllOf(HasBearerToken(kTestToken),
                                HasMetadata("x-wf-channel", "v0-19")),
                          EqualsProto("id: 'alice@example.com:wf'"), _))
      .WillOnce(ReplyText("id: 'alice@example.com:wf' title: 'scripted'"));
  GetWorkflowRequest request;
  request.set_id("alice@example.com:wf");

  EXPECT_THAT(client().GetWorkflow(request),
              IsOkAndHolds(Partially(EqualsProto("title: 'scripted'"))));
}

TEST_F(AuthTest, ExpectCallOnAnotherTokenExplainsWhichTokenCame) {
  EXPECT_CALL(backend(), GetWorkflow(HasBearerToken("someone-else"), _, _))
      .Times(AnyNumber());
  GetWorkflowRequest request;
  request.set_id("nobody@example.com:missing");
  ::testing::TestPartResultArray failures;
  {
    // gMock reports the mismatch from the server's thread.
    ::testing::ScopedFakeTestPartResultReporter reporter(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ALL_THREADS,
        &failures);
    // Unmatched, so it falls through to the in-memory backend.
    EXPECT_THAT(client().GetWorkflow(request, {.retry = RetryPolicy::None()}),
                StatusIs(absl::StatusCode::kNotFound));
    // The report was written on the server's thread before the call ended;
    // waiting for the journal to record the end orders it before the reads
    // below (the RPC itself is no edge ThreadSanitizer can see).
    ASSERT_TRUE(WaitForCalls(server(), "GetWorkflow", 1, absl::Seconds(10)));
  }
  ASSERT_EQ(failures.size(), 1);
  EXPECT_THAT(failures.GetTestPartResult(0).message(),
              AllOf(HasSubstr("has metadata \"authorization\" with a value "
                              "that is equal to \"Bearer someone-else\""),
                    HasSubstr("whose \"authorization\" values are { \"Bearer "
                              "test-token\" }")));
}

TEST_F(AuthTest, NoTokenOnTheWireIsUnauthenticated) {
  fake::ChannelOptions channel;
  channel.root_pem = certificate_authority().ca_pem();
  channel.target_name_override = "localhost";
  auto stub = JobAPI::NewStub(server().CreateChannel(channel));
  grpc::ClientContext context;
  descarteslabs::workflows::GetJobRequest request;
  descarteslabs::workflows::Job job;
  EXPECT_THAT(
      stub->GetJob(&context, request, &job),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("authorization")));
}

TEST_F(AuthTest, TokenSourceFailureFailsTheCallBeforeSending) {
  EXPECT_THAT(GetWorkflowWith(std::make_shared<FailingAuth>(
                  absl::UnauthenticatedError("no credentials file"))),
              StatusIs(absl::StatusCode::kUnauthenticated,
                       HasSubstr("no credentials file")));
  EXPECT_THAT(journal().Calls("GetWorkflow"), IsEmpty());
}

TEST_F(AuthTest, WrongTokenIsUnauthenticated) {
  EXPECT_THAT(GetWorkflowWith(std::make_shared<StaticTokenAuth>("wrong")),
              StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(AuthTest, ExpiredTokenIsUnauthenticated) {
  EXPECT_THAT(
      GetWorkflowWith(std::make_shared<StaticTokenAuth>("expired-token")),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
}

TEST_F(AuthTest, TokenExpiringOnTheVirtualClockStopsWorking) {
  auto auth = std::make_shared<ExpiringTokenAuth>(shared_clock(), kTestToken,
                                                  absl::Minutes(5));
  EXPECT_THAT(GetWorkflowWith(auth), StatusIs(absl::StatusCode::kNotFound));
  clock().AdvanceBy(absl::Minutes(6));
  EXPECT_THAT(
      GetWorkflowWith(auth),
      StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("expired")));
}

TEST_F(AuthTest, ValidTokenWithoutPermissionIsPermissionDenied) {
  EXPECT_THAT(
      GetWorkflowWith(std::make_shared<StaticTokenAuth>("viewer-token")),
      StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(AuthTest, PermissionDeniedWithRetryAfterIsRetried) {
  fake::AuthPolicy policy;
  policy.set_require_bearer_token(true);
  policy.add_valid_tokens("viewer-token");
  policy.add_permission_denied_tokens("viewer-token");
  policy.set_permission_denied_retry_after("3");
  server().script().SetAuthPolicy(policy);
  auto counting = std::make_shared<CountingAuth>(
      std::make_shared<StaticTokenAuth>("viewer-token"));
  std::unique_ptr<Client> other =
      MakeClient([&](ClientOptions& options) { options.auth = counting; });
  GetWorkflowRequest request;
  request.set_id("nobody@example.com:missing");

  auto result = other->GetWorkflow(request);

  // Every attempt is refused, each after waiting the 3 s retry-after.
  EXPECT_TRUE(IsRetryExhausted(result.status())) << result.status();
  EXPECT_THAT(journal().Calls("GetWorkflow"), SizeIs(6));
  EXPECT_THAT(clock().sleeps(), ::testing::Each(absl::Seconds(3)));
  EXPECT_EQ(counting->count(), 6);  // the token is asked for on every attempt
}

}  // namespace
}  // namespace workflows
