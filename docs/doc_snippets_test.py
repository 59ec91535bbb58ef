"""Checks the user guide's code blocks: tools/check_doc_snippets.py over the
Markdown files given as arguments (README.md and docs/*.md, from
docs/BUILD.bazel), relative to the runfiles root.

Snippet files are looked up in the runfiles (the test's `data`), except
examples/consumer/, which is .bazelignore'd and so cannot be a label: it is
read from the source tree, found by resolving README.md's runfiles symlink.
Only that directory is taken from the source tree, so a snippet file missing
from `data` still fails the test.

Run through Bazel: bazel test //docs:doc_snippets_test
"""

import os
import sys
import tempfile

from tools import check_doc_snippets

# Directories that Bazel cannot see (.bazelignore), read from the source tree.
OUTSIDE_BAZEL = ["examples/consumer"]


def main(docs):
    root = os.path.join(os.environ["TEST_SRCDIR"], os.environ["TEST_WORKSPACE"])
    readme = os.path.join(root, "README.md")
    source_root = os.path.dirname(os.path.realpath(readme))
    fallback = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    for path in OUTSIDE_BAZEL:
        source = os.path.join(source_root, path)
        if not os.path.isdir(source):
            print("FAIL: %s not found in the source tree %s (resolved from "
                  "the runfiles symlink %s)" % (path, source_root, readme),
                  file=sys.stderr)
            return 1
        link = os.path.join(fallback, path)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(source, link)
    return check_doc_snippets.main(
        ["--root=" + root, "--fallback_root=" + fallback] + docs)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
