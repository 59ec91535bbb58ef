#include "fake_server/methods.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace fake {
namespace {

using ::testing::HasSubstr;

TEST(MethodsTest, ListsEveryServedMethodOnce) {
  std::set<std::string> full_names;
  for (const MethodInfo& m : AllMethods()) {
    EXPECT_TRUE(full_names.insert(m.full_name).second) << m.full_name;
    ASSERT_NE(m.request_type, nullptr) << m.full_name;
    ASSERT_NE(m.response_type, nullptr) << m.full_name;
  }
  // 6 WorkflowAPI + 5 JobAPI + 5 XYZAPI + 5 AccessGrantApi + 2 Health.
  EXPECT_EQ(full_names.size(), 23);
  EXPECT_TRUE(full_names.count("/descarteslabs.workflows.JobAPI/WatchJob"));
  EXPECT_TRUE(full_names.count("/grpc.health.v1.Health/Watch"));
  EXPECT_TRUE(full_names.count(
      "/descarteslabs.discover.v0alpha.AccessGrantApi/ListAccessGrantsStream"));
}

TEST(MethodsTest, FindsBareServiceSlashAndFullNames) {
  for (const char* name :
       {"GetJob", "JobAPI/GetJob", "descarteslabs.workflows.JobAPI/GetJob",
        "/descarteslabs.workflows.JobAPI/GetJob"}) {
    auto method = FindMethod(name);
    ASSERT_TRUE(method.ok()) << name << ": " << method.status();
    EXPECT_EQ((*method)->full_name, "/descarteslabs.workflows.JobAPI/GetJob");
    EXPECT_EQ((*method)->bare_name, "GetJob");
    EXPECT_EQ((*method)->service, "descarteslabs.workflows.JobAPI");
    EXPECT_FALSE((*method)->server_streaming);
    EXPECT_EQ((*method)->request_type->full_name(),
              "descarteslabs.workflows.GetJobRequest");
    EXPECT_EQ((*method)->response_type->full_name(),
              "descarteslabs.workflows.Job");
  }
}

TEST(MethodsTest, KnowsStreamingAndResponseTypes) {
  auto watch = FindMethod("WatchJob");
  ASSERT_TRUE(watch.ok());
  EXPECT_TRUE((*watch)->server_streaming);
  EXPECT_EQ((*watch)->response_type->full_name(),
            "descarteslabs.workflows.Job.State");

  auto health = FindMethod("Check");
  ASSERT_TRUE(health.ok());
  EXPECT_TRUE(IsHealthMethod(**health));
  EXPECT_EQ((*health)->full_name, "/grpc.health.v1.Health/Check");
  EXPECT_FALSE(IsHealthMethod(**watch));
}

TEST(MethodsTest, UnknownNameListsValidNamesAndSuggests) {
  auto method = FindMethod("GetJbo");
  ASSERT_FALSE(method.ok());
  EXPECT_EQ(method.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(method.status().message(),
              HasSubstr("unknown method \"GetJbo\""));
  EXPECT_THAT(method.status().message(), HasSubstr("did you mean \"GetJob\"?"));
  EXPECT_THAT(method.status().message(),
              HasSubstr("valid: CancelJob, Check, CreateAccessGrant"));
  EXPECT_THAT(method.status().message(), HasSubstr("WatchJob"));
}

TEST(MethodsTest, WrongCaseSuggestsTheRightSpelling) {
  auto method = FindMethod("/descarteslabs.workflows.JobAPI/getjob");
  ASSERT_FALSE(method.ok());
  EXPECT_THAT(method.status().message(), HasSubstr("did you mean \"GetJob\"?"));
}

TEST(MethodsTest, FarOffNameHasNoSuggestion) {
  auto method = FindMethod("Frobnicate");
  ASSERT_FALSE(method.ok());
  EXPECT_THAT(method.status().message(), ::testing::Not(HasSubstr("did you")));
}

}  // namespace
}  // namespace fake
}  // namespace workflows
