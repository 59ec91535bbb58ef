#include "testing/mock_workflows_backend.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace workflows {
namespace testing {
namespace {

using ::testing::_;
using ::testing::Invoke;
using ::testing::Return;

grpc::Status Unimplemented(absl::string_view method) {
  return grpc::Status(
      grpc::StatusCode::UNIMPLEMENTED,
      absl::StrCat("MockWorkflowsBackend: ", method,
                   " matched no expectation and there is no fallthrough "
                   "backend"));
}

}  // namespace

MockWorkflowsBackend::MockWorkflowsBackend() { SetDefaultActions(); }

MockWorkflowsBackend::MockWorkflowsBackend(
    std::shared_ptr<fake::Backend> fallthrough)
    : fallthrough_(std::move(fallthrough)) {
  SetDefaultActions();
}

MockWorkflowsBackend::~MockWorkflowsBackend() = default;

std::shared_ptr<MockWorkflowsBackend> MakeMockWorkflowsBackend(
    MockFlavor flavor, std::shared_ptr<fake::Backend> fallthrough) {
  switch (flavor) {
    case MockFlavor::kNice:
      return std::make_shared<::testing::NiceMock<MockWorkflowsBackend>>(
          std::move(fallthrough));
    case MockFlavor::kNaggy:
      return std::make_shared<::testing::NaggyMock<MockWorkflowsBackend>>(
          std::move(fallthrough));
    case MockFlavor::kStrict:
      return std::make_shared<::testing::StrictMock<MockWorkflowsBackend>>(
          std::move(fallthrough));
  }
  return nullptr;
}

// Each default either forwards to the fallthrough backend or answers
// UNIMPLEMENTED; one macro keeps the 23 methods from drifting apart.
#define WORKFLOWS_MOCK_DEFAULT(Method)                                \
  if (fallthrough_ != nullptr) {                                      \
    ON_CALL(*this, Method(_, _, _))                                   \
        .WillByDefault(Invoke(fallthrough_.get(), &Backend::Method)); \
  } else {                                                            \
    ON_CALL(*this, Method(_, _, _))                                   \
        .WillByDefault(Return(Unimplemented(#Method)));               \
  }

void MockWorkflowsBackend::SetDefaultActions() {
  WORKFLOWS_MOCK_DEFAULT(UpsertWorkflow)
  WORKFLOWS_MOCK_DEFAULT(GetWorkflow)
  WORKFLOWS_MOCK_DEFAULT(GetVersion)
  WORKFLOWS_MOCK_DEFAULT(SearchWorkflows)
  WORKFLOWS_MOCK_DEFAULT(DeleteWorkflow)
  WORKFLOWS_MOCK_DEFAULT(GetWmtsUrlTemplate)
  WORKFLOWS_MOCK_DEFAULT(CreateJob)
  WORKFLOWS_MOCK_DEFAULT(ListJobs)
  WORKFLOWS_MOCK_DEFAULT(GetJob)
  WORKFLOWS_MOCK_DEFAULT(CancelJob)
  WORKFLOWS_MOCK_DEFAULT(WatchJob)
  WORKFLOWS_MOCK_DEFAULT(CreateXYZ)
  WORKFLOWS_MOCK_DEFAULT(GetXYZ)
  WORKFLOWS_MOCK_DEFAULT(ListXYZ)
  WORKFLOWS_MOCK_DEFAULT(DeleteXYZ)
  WORKFLOWS_MOCK_DEFAULT(GetXYZSessionLogs)
  WORKFLOWS_MOCK_DEFAULT(CreateAccessGrant)
  WORKFLOWS_MOCK_DEFAULT(DeleteAccessGrant)
  WORKFLOWS_MOCK_DEFAULT(ListAccessGrants)
  WORKFLOWS_MOCK_DEFAULT(ListAccessGrantsStream)
  WORKFLOWS_MOCK_DEFAULT(ReplaceAccessGrant)
  WORKFLOWS_MOCK_DEFAULT(Check)
  WORKFLOWS_MOCK_DEFAULT(Watch)
}

#undef WORKFLOWS_MOCK_DEFAULT

}  // namespace testing
}  // namespace workflows

template class ::testing::NiceMock<::workflows::testing::MockWorkflowsBackend>;
template class ::testing::NaggyMock<::workflows::testing::MockWorkflowsBackend>;
template class ::testing::StrictMock<
    ::workflows::testing::MockWorkflowsBackend>;

namespace workflows {
namespace fake {

void PrintTo(CallContext* call, std::ostream* os) {
  if (call == nullptr) {
    *os << "CallContext(null)";
    return;
  }
  *os << "CallContext{" << call->method() << ", metadata {";
  const char* separator = "";
  for (const auto& [key, value] : call->request_metadata()) {
    *os << separator << key << ": \"" << value << "\"";
    separator = ", ";
  }
  *os << "}}";
}

}  // namespace fake
}  // namespace workflows
