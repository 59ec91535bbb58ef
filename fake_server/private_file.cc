#include "fake_server/private_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace workflows {
namespace fake {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path,
                        int error) {
  return absl::UnavailableError(
      absl::StrCat("cannot ", what, " \"", path, "\": ", std::strerror(error)));
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents, mode_t mode) {
  if (path.empty() || path.back() == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", path, "\" is not a file path"));
  }
  // A random suffix: O_EXCL then fails only on a name someone planted, and
  // two writers in one process never share a temporary file.
  absl::BitGen random;
  const std::string temp =
      absl::StrFormat("%s/.%s.tmp.%d.%016x", DirectoryOf(path),
                      path.substr(path.rfind('/') + 1), getpid(),
                      absl::Uniform<uint64_t>(random));
  const int fd = open(
      temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("create", temp, errno);
  // The umask may have cleared bits of `mode` (never added any).
  int error = fchmod(fd, mode) == 0 ? 0 : errno;
  size_t written = 0;
  while (error == 0 && written < contents.size()) {
    const ssize_t n =
        write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = errno;
    } else {
      written += static_cast<size_t>(n);
    }
  }
  if (close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    unlink(temp.c_str());
    return ErrnoError("write", temp, error);
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    error = errno;
    unlink(temp.c_str());
    return absl::UnavailableError(absl::StrCat("cannot rename \"", temp,
                                               "\" to \"", path,
                                               "\": ", std::strerror(error)));
  }
  return absl::OkStatus();
}

absl::Status CheckPrivateDirectory(const std::string& dir) {
  struct stat info;
  if (lstat(dir.c_str(), &info) != 0) {
    const int error = errno;
    if (error == ENOENT) {
      return absl::NotFoundError(
          absl::StrCat("directory \"", dir, "\" does not exist"));
    }
    return ErrnoError("inspect", dir, error);
  }
  if (S_ISLNK(info.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "\"", dir, "\" is a symbolic link; give the real directory"));
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("\"", dir, "\" exists but is not a directory"));
  }
  if (info.st_uid != geteuid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("directory \"", dir, "\" is owned by uid ", info.st_uid,
                     ", not by this process's user (uid ", geteuid(), ")"));
  }
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("directory \"%s\" is writable by group or others "
                        "(mode %04o); chmod go-w it",
                        dir, info.st_mode & 07777));
  }
  return absl::OkStatus();
}

}  // namespace fake
}  // namespace workflows
