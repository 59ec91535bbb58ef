#include "client/auth.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace {

using ::testing::HasSubstr;

TEST(StaticTokenAuthTest, ReturnsTheToken) {
  StaticTokenAuth auth("secret");
  ASSERT_TRUE(auth.Token().ok());
  EXPECT_EQ(*auth.Token(), "secret");
}

TEST(StaticTokenAuthTest, EmptyTokenIsUnauthenticated) {
  StaticTokenAuth auth("");
  EXPECT_EQ(auth.Token().status().code(), absl::StatusCode::kUnauthenticated);
}

TEST(EnvironmentAuthTest, ReadsTheVariableAtCallTime) {
  constexpr char kVar[] = "WORKFLOWS_AUTH_TEST_TOKEN";
  unsetenv(kVar);
  EnvironmentAuth auth(kVar);  // Constructing without a token is fine.
  absl::StatusOr<std::string> missing = auth.Token();
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(kVar));

  setenv(kVar, "first", 1);
  EXPECT_EQ(*auth.Token(), "first");
  setenv(kVar, "second", 1);
  EXPECT_EQ(*auth.Token(), "second");
  unsetenv(kVar);
}

TEST(AuthTest, DefaultIsSharedEnvironmentAuth) {
  std::shared_ptr<Auth> a = Auth::GetDefault();
  EXPECT_EQ(a, Auth::GetDefault());
  EXPECT_NE(dynamic_cast<EnvironmentAuth*>(a.get()), nullptr);
}

TEST(AuthTest, MakesCallCredentials) {
  EXPECT_NE(MakeCallCredentials(std::make_shared<StaticTokenAuth>("t")),
            nullptr);
}

}  // namespace
}  // namespace workflows
