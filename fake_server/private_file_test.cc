#include "fake_server/private_file.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace workflows {
namespace fake {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A fresh directory per test under $TEST_TMPDIR, mode 0700.
std::string FreshDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir =
      absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/", name, ".", getpid());
  mkdir(dir.c_str(), 0700);
  chmod(dir.c_str(), 0700);
  return dir;
}

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

mode_t ModeOf(const std::string& path) {
  struct stat info;
  if (lstat(path.c_str(), &info) != 0) return 0;
  return info.st_mode;
}

// Names in `dir` other than `keep` (leftover temporary files).
std::string OtherEntries(const std::string& dir, const std::string& keep) {
  std::string others;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return "<unreadable>";
  while (dirent* entry = readdir(d)) {
    const std::string name = entry->d_name;
    if (name == "." || name == ".." || name == keep) continue;
    absl::StrAppend(&others, name, " ");
  }
  closedir(d);
  return others;
}

TEST(WriteFileAtomicallyTest, WritesPrivateFileByDefault) {
  const std::string dir = FreshDir("private");
  const std::string path = dir + "/journal.textproto";
  const mode_t old_umask = umask(0);  // Mode must not depend on the umask.
  ASSERT_TRUE(WriteFileAtomically(path, "calls {}\n").ok());
  umask(old_umask);
  EXPECT_EQ(Read(path), "calls {}\n");
  EXPECT_EQ(ModeOf(path) & 07777, 0600);
  EXPECT_THAT(OtherEntries(dir, "journal.textproto"), IsEmpty());
}

TEST(WriteFileAtomicallyTest, ReplacesAndTightensAnExistingFile) {
  const std::string dir = FreshDir("replace");
  const std::string path = dir + "/key";
  std::ofstream(path) << "old contents that are longer";
  ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  ASSERT_TRUE(WriteFileAtomically(path, "new").ok());
  EXPECT_EQ(Read(path), "new");
  EXPECT_EQ(ModeOf(path) & 07777, 0600);
}

TEST(WriteFileAtomicallyTest, PublicModeOnRequest) {
  const std::string dir = FreshDir("public");
  const std::string path = dir + "/ca.pem";
  ASSERT_TRUE(WriteFileAtomically(path, "pem", 0644).ok());
  EXPECT_EQ(ModeOf(path) & 07777, 0644);
}

TEST(WriteFileAtomicallyTest, PlantedSymlinkIsReplacedNotFollowed) {
  const std::string dir = FreshDir("symlink");
  const std::string target = dir + "/victim";
  std::ofstream(target) << "precious";
  const std::string path = dir + "/server.key";
  ASSERT_EQ(symlink(target.c_str(), path.c_str()), 0);
  ASSERT_TRUE(WriteFileAtomically(path, "secret").ok());
  EXPECT_EQ(Read(target), "precious");
  EXPECT_TRUE(S_ISREG(ModeOf(path))) << "still a symlink";
  EXPECT_EQ(Read(path), "secret");
}

TEST(WriteFileAtomicallyTest, ErrorsNameThePathAndLeaveNothingBehind) {
  const std::string dir = FreshDir("errors");
  absl::Status missing = WriteFileAtomically(dir + "/no/such/dir/file", "x");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.message(), HasSubstr(dir + "/no/such/dir/"));
  EXPECT_THAT(missing.message(), HasSubstr("No such file"));
  // The target is a directory: rename() fails and the temp file goes away.
  ASSERT_EQ(mkdir((dir + "/occupied").c_str(), 0700), 0);
  absl::Status occupied = WriteFileAtomically(dir + "/occupied", "x");
  EXPECT_FALSE(occupied.ok());
  EXPECT_THAT(occupied.message(), HasSubstr(dir + "/occupied"));
  EXPECT_THAT(OtherEntries(dir, "occupied"), IsEmpty());
  EXPECT_EQ(WriteFileAtomically("", "x").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CheckPrivateDirectoryTest, AcceptsOwnPrivateDirectory) {
  EXPECT_TRUE(CheckPrivateDirectory(FreshDir("mine")).ok());
}

TEST(CheckPrivateDirectoryTest, RefusesSymlinkWritableAndMissing) {
  const std::string dir = FreshDir("checks");
  const std::string link = dir + "/link";
  ASSERT_EQ(symlink(dir.c_str(), link.c_str()), 0);
  absl::Status status = CheckPrivateDirectory(link);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr(link));
  EXPECT_THAT(status.message(), HasSubstr("symbolic link"));

  const std::string open_dir = dir + "/open";
  ASSERT_EQ(mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(open_dir.c_str(), 0777), 0);
  status = CheckPrivateDirectory(open_dir);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("writable by group or others"));

  const std::string file = dir + "/file";
  std::ofstream(file) << "x";
  EXPECT_THAT(CheckPrivateDirectory(file).message(),
              HasSubstr("not a directory"));
  EXPECT_EQ(CheckPrivateDirectory(dir + "/missing").code(),
            absl::StatusCode::kNotFound);
}

TEST(CheckPrivateDirectoryTest, RefusesDirectoryOwnedByAnotherUser) {
  // A directory this user does not own: given away when chown is allowed,
  // else one of the system's (a sandbox may map "root" to another uid).
  std::string dir = FreshDir("given_away");
  if (chown(dir.c_str(), 65534, 65534) != 0) {
    dir.clear();
    for (const char* candidate : {"/", "/proc/1", "/usr", "/etc", "/tmp"}) {
      struct stat info;
      if (lstat(candidate, &info) == 0 && S_ISDIR(info.st_mode) &&
          info.st_uid != geteuid()) {
        dir = candidate;
        break;
      }
    }
  }
  if (dir.empty()) GTEST_SKIP() << "no directory owned by another user";
  absl::Status status = CheckPrivateDirectory(dir);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("is owned by uid"));
  EXPECT_THAT(status.message(), HasSubstr(dir));
}

}  // namespace
}  // namespace fake
}  // namespace workflows
