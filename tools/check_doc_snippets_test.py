"""Self-test of check_doc_snippets.py: each kind of mistake it exists to
catch is reported (as DOC:LINE) and fails the run, and a correct guide passes.

Run through Bazel: bazel test //tools:check_doc_snippets_test
"""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest

try:
    from tools import check_doc_snippets
except ImportError:  # run directly: python3 tools/check_doc_snippets_test.py
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import check_doc_snippets

SOURCE = textwrap.dedent("""\
    #include "lib.h"

    int Add(int a, int b) {
      int sum = a + b;
      // A comment.
      return sum;
    }

    int Twice(int a) {
      return Add(a, a);
    }
    """)

SCENARIO = textwrap.dedent("""\
    # proto-message: workflows.fake.Scenario
    rules {
      method: "GetJob"
      behavior { fail { code: "UNAVAILABLE" } }
    }
    """)


class CheckDocSnippetsTest(unittest.TestCase):

    def setUp(self):
        self.root = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.addCleanup(shutil.rmtree, self.root)
        self.write("src/lib.cc", SOURCE)
        self.write("data/scenario.textproto", SCENARIO)

    def write(self, path, text, root=None):
        full = os.path.join(root or self.root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w", encoding="utf-8") as f:
            f.write(text)

    def check(self, doc_text, extra_args=()):
        """Runs the checker over one doc; returns (exit code, stderr)."""
        self.write("guide.md", textwrap.dedent(doc_text))
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), \
                contextlib.redirect_stdout(io.StringIO()):
            code = check_doc_snippets.main(
                ["--root=" + self.root] + list(extra_args) + ["guide.md"])
        return code, stderr.getvalue()

    def assertFailsAt(self, doc_text, line, message, extra_args=()):
        code, errors = self.check(doc_text, extra_args)
        self.assertEqual(code, 1, errors)
        self.assertIn("guide.md:%d: %s" % (line, message), errors)

    def test_unmarked_block_fails_with_doc_and_line(self):
        self.assertFailsAt("""\
            # Guide

            ```c++
            int sum = a + b;
            ```
            """, 3, "code block has no marker")

    def test_unmarked_shell_block_fails_too(self):
        self.assertFailsAt("""\
            Run:

            ```sh
            bazel test //...
            ```
            """, 3, "code block has no marker")

    def test_snippet_with_a_line_missing_from_the_file_fails(self):
        code, errors = self.check("""\
            <!-- snippet: src/lib.cc -->
            ```c++
            int Add(int a, int b) {
              int sum = a - b;
            ```
            """)
        self.assertEqual(code, 1, errors)
        self.assertIn("guide.md:4: line not found in src/lib.cc", errors)
        self.assertIn("int sum = a - b;", errors)
        # The closest real line is suggested.
        self.assertIn("src/lib.cc:4: int sum = a + b;", errors)

    def test_lines_out_of_order_fail(self):
        code, errors = self.check("""\
            <!-- snippet: src/lib.cc -->
            ```c++
            return Add(a, a);
            ...
            int sum = a + b;
            ```
            """)
        self.assertEqual(code, 1, errors)
        self.assertIn("guide.md:5: line not found in src/lib.cc after its "
                      "line 10", errors)
        self.assertIn("keep the block's lines in the file's order", errors)

    def test_not_code_on_a_source_block_fails(self):
        for language in ("c++", "python", "textproto"):
            with self.subTest(language=language):
                self.assertFailsAt("""\
                    <!-- not-code -->
                    ```%s
                    int sum = a + b;
                    ```
                    """ % language, 1,
                    "a %s block cannot be <!-- not-code -->" % language)

    def test_snippet_of_a_missing_file_fails(self):
        self.assertFailsAt("""\
            <!-- snippet: src/nope.cc -->
            ```c++
            int sum = a + b;
            ```
            """, 1, "snippet file src/nope.cc does not exist")

    def test_snippet_with_only_comments_and_elisions_fails(self):
        self.assertFailsAt("""\
            <!-- snippet: src/lib.cc -->
            ```c++
            // Adds.
            ...
            ```
            """, 2, "snippet of src/lib.cc has no line to check")

    def test_unknown_marker_fails(self):
        self.assertFailsAt("""\
            <!-- snipet: src/lib.cc -->
            ```c++
            int sum = a + b;
            ```
            """, 1, "unknown marker <!-- snipet: src/lib.cc -->")

    def test_unclosed_block_fails(self):
        self.assertFailsAt("""\
            <!-- not-code -->
            ```sh
            bazel test //...
            """, 2, "code block is never closed")

    def test_one_bad_block_fails_a_doc_of_good_ones(self):
        self.assertFailsAt("""\
            <!-- snippet: src/lib.cc -->
            ```c++
            int Twice(int a) {
            ```

            ```
            unmarked
            ```
            """, 6, "code block has no marker")

    def test_correct_snippet_with_elision_passes(self):
        code, errors = self.check("""\
            # Guide

            <!-- snippet: src/lib.cc -->
            ```c++
            #include "lib.h"
            ...
            int Add(int a, int b) {
              // Comments need not be in the file.
              int sum = a + b;
              return sum;   
            }
            \u2026
            int Twice(int a) {
              return Add(a, a);
            }
            ```

            The marker may sit one blank line above the fence:

            <!-- snippet: data/scenario.textproto -->

            ```textproto
            # proto-message: workflows.fake.Scenario
            rules {
              method: "GetJob"
              ...
            }
            ```

            <!-- not-code -->
            ```sh
            bazel test //...
            ```
            """)
        self.assertEqual(code, 0, errors)
        self.assertEqual(errors, "")

    def test_preprocessor_lines_are_checked_in_c_blocks(self):
        self.assertFailsAt("""\
            <!-- snippet: src/lib.cc -->
            ```c++
            #include "other.h"
            int sum = a + b;
            ```
            """, 3, "line not found in src/lib.cc")

    def test_fallback_root_finds_files_missing_under_root(self):
        doc = """\
            <!-- snippet: consumer/BUILD.bazel -->
            ```python
            name = "job_runner",
            ```
            """
        fallback = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        self.addCleanup(shutil.rmtree, fallback)
        self.write("consumer/BUILD.bazel",
                   'cc_library(\n    name = "job_runner",\n)\n', fallback)
        self.assertFailsAt(doc, 1, "snippet file consumer/BUILD.bazel does "
                           "not exist")
        code, errors = self.check(doc, ["--fallback_root=" + fallback])
        self.assertEqual(code, 0, errors)

    def test_command_line_exit_status(self):
        self.write("bad.md", "```\nunmarked\n```\n")
        self.write("good.md", "<!-- not-code -->\n```\n$ ls\n```\n")
        script = check_doc_snippets.__file__
        bad = subprocess.run(
            [sys.executable, script, "--root=" + self.root, "good.md",
             "bad.md"], capture_output=True, text=True)
        self.assertEqual(bad.returncode, 1, bad.stderr)
        self.assertIn("bad.md:1: code block has no marker", bad.stderr)
        self.assertIn("FAIL: 1 error(s)", bad.stderr)
        good = subprocess.run(
            [sys.executable, script, "--root=" + self.root, "good.md"],
            capture_output=True, text=True)
        self.assertEqual(good.returncode, 0, good.stderr)
        self.assertIn("OK: 1 Markdown files, 1 code blocks", good.stdout)


if __name__ == "__main__":
    unittest.main()
