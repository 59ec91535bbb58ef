#ifndef WORKFLOWS_FAKE_SERVER_PRIVATE_FILE_H_
#define WORKFLOWS_FAKE_SERVER_PRIVATE_FILE_H_

// Writing files that other local users must neither read nor redirect: the
// journal (it may hold request data), private keys, the port file.
//
//   absl::Status s = WriteFileAtomically("/tmp/ci/journal.textproto", text);
//   // /tmp/ci/journal.textproto now holds `text`, mode 0600, or is unchanged.
//
// The bytes go to a fresh temporary file in the target's directory, created
// with O_CREAT|O_EXCL|O_NOFOLLOW (so a symlink or file planted there is never
// opened, let alone followed), then rename()d over the target. rename()
// replaces a symlink at the target path itself instead of writing through
// it, and a reader never sees a partial file.

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace workflows {
namespace fake {

// Writes `contents` to `path` atomically with permission bits `mode` (0600
// by default; 0644 for certificates and other public files). Errors name the
// path and the system error; on error `path` is untouched and no temporary
// file is left behind.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view contents,
                                 mode_t mode = 0600);

// Checks that `dir` is a directory the kit may write secrets into: not a
// symlink, owned by this process's effective user, and not writable by group
// or others (who could otherwise swap files in it). FAILED_PRECONDITION
// naming the path and the problem; NOT_FOUND if it does not exist.
absl::Status CheckPrivateDirectory(const std::string& dir);

}  // namespace fake
}  // namespace workflows

#endif  // WORKFLOWS_FAKE_SERVER_PRIVATE_FILE_H_
