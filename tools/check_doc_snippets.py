#!/usr/bin/env python3
"""Checks that every code block of the user guide is a tested file's excerpt.

Every fenced code block in the given Markdown files must be preceded (on the
line before the opening fence, or the line before that if it is blank) by a
marker:

  <!-- snippet: path/to/file -->
      The block is an excerpt of path/to/file (repository-relative). Every
      line of the block that is not blank, not a pure comment (`//` or `#`
      after stripping; in C/C++ blocks `#include`, `#define`, ... are code)
      and not an elision (containing `...` or the ellipsis character) must,
      stripped of surrounding whitespace, be a line of the file, in the same
      order (an ordered subsequence of the file's stripped lines).

  <!-- not-code -->
      Shell commands, command output, error messages, directory listings:
      anything that is not a compiled or parsed source. Blocks tagged as a
      source language (c++, python, textproto, ...) may not use it.

Usage:
  check_doc_snippets.py [--root=DIR] [--fallback_root=DIR] DOC.md...

DOC paths and snippet paths are relative to --root (default: the current
directory). A snippet path missing under --root is looked up under
--fallback_root (used for files Bazel cannot name as a label, such as the
.bazelignore'd examples/consumer/ workspace). Errors are printed as
`DOC:LINE: message` and make the exit status 1.

Python 3 standard library only.
"""

import argparse
import difflib
import os
import re
import sys

MARKER_RE = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
SNIPPET_RE = re.compile(r"^snippet:\s*(\S+)$")
FENCE_RE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([^`\s]*)")

# Fence info strings of sources: such a block must be a snippet.
SOURCE_LANGUAGES = {
    "c", "c++", "cc", "cpp", "h", "python", "py", "bzl", "starlark",
    "textproto", "pbtxt", "prototext", "proto", "protobuf",
}
C_LIKE = {"c", "c++", "cc", "cpp", "h"}
PREPROCESSOR_RE = re.compile(
    r"^#\s*(include|define|undef|if|ifdef|ifndef|elif|else|endif|pragma)\b")

HELP = ("mark every code block with <!-- snippet: path/to/tested/file --> "
        "(an excerpt of that file) or <!-- not-code --> (shell commands, "
        "output, errors) on the line before its opening fence")


class Block(object):
    def __init__(self, doc, fence_line, info, lines):
        self.doc = doc
        self.fence_line = fence_line  # 1-based line of the opening fence
        self.info = info.lower()
        self.lines = lines  # [(1-based doc line, text)]
        self.marker = None  # (1-based line, text inside <!-- -->) or None


def parse_blocks(doc, text, errors):
    """Returns the fenced code blocks of a Markdown text, with markers."""
    lines = text.split("\n")
    blocks = []
    i = 0
    while i < len(lines):
        m = FENCE_RE.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group(2)
        block = Block(doc, i + 1, m.group(3), [])
        # The marker: the line before the fence, or the one before a blank.
        for j in (i - 1, i - 2):
            if j < 0:
                break
            mm = MARKER_RE.match(lines[j])
            if mm:
                block.marker = (j + 1, mm.group(1))
                break
            if lines[j].strip():
                break
        k = i + 1
        closing = re.compile(r"^\s*" + re.escape(fence[0]) + "{%d,}\s*$" %
                             len(fence))
        while k < len(lines) and not closing.match(lines[k]):
            block.lines.append((k + 1, lines[k]))
            k += 1
        if k == len(lines):
            errors.append("%s:%d: code block is never closed (no closing %s)"
                          % (doc, i + 1, fence))
        blocks.append(block)
        i = k + 1
    return blocks


def is_checked(line, info):
    """Whether a stripped block line must be found in the source file."""
    if not line:
        return False
    if "..." in line or "\u2026" in line:
        return False
    if line.startswith("//"):
        return False
    if line.startswith("#"):
        return info in C_LIKE and bool(PREPROCESSOR_RE.match(line))
    return True


def resolve(path, roots):
    for root in roots:
        candidate = os.path.join(root, path)
        if os.path.isfile(candidate):
            return candidate
    return None


def check_snippet(block, path, roots, errors):
    marker_line = block.marker[0]
    if os.path.isabs(path) or ".." in path.split("/"):
        errors.append("%s:%d: snippet path %r must be relative to the "
                      "repository root" % (block.doc, marker_line, path))
        return
    found = resolve(path, roots)
    if found is None:
        errors.append(
            "%s:%d: snippet file %s does not exist (paths are relative to the "
            "repository root; if it exists, add it to the data of the docs "
            "test in docs/BUILD.bazel)" % (block.doc, marker_line, path))
        return
    with open(found, encoding="utf-8") as f:
        source = [l.strip() for l in f.read().split("\n")]
    checked = [(n, l.strip()) for n, l in block.lines
               if is_checked(l.strip(), block.info)]
    if not checked:
        errors.append("%s:%d: snippet of %s has no line to check; show real "
                      "lines of the file or use <!-- not-code -->"
                      % (block.doc, block.fence_line, path))
        return
    pos = 0  # index in source after the last matched line
    prev = None  # (doc line, source line number) of the last match
    for doc_line, line in checked:
        try:
            idx = source.index(line, pos)
        except ValueError:
            idx = -1
        if idx >= 0:
            pos = idx + 1
            prev = (doc_line, idx + 1)
            continue
        msg = "%s:%d: line not found in %s" % (block.doc, doc_line, path)
        if prev:
            msg += " after its line %d (matched by %s:%d)" % (
                prev[1], block.doc, prev[0])
        msg += ": %s" % line
        if line in source[:pos]:
            msg += ("\n    it is at %s:%d, before the previous matched line: "
                    "keep the block's lines in the file's order"
                    % (path, source.index(line) + 1))
        else:
            close = difflib.get_close_matches(line, source, n=1, cutoff=0.6)
            if close:
                msg += ("\n    closest line, %s:%d: %s"
                        % (path, source.index(close[0]) + 1, close[0]))
            msg += ("\n    copy the line from the file, or elide it with a "
                    "'...' line or a comment")
        errors.append(msg)
        return


def check_doc(doc, roots, counts, errors):
    path = resolve(doc, roots[:1])
    if path is None:
        errors.append("%s:1: no such Markdown file" % doc)
        return
    with open(path, encoding="utf-8") as f:
        blocks = parse_blocks(doc, f.read(), errors)
    for block in blocks:
        if block.marker is None:
            errors.append("%s:%d: code block has no marker: %s"
                          % (doc, block.fence_line, HELP))
            continue
        marker_line, marker = block.marker
        m = SNIPPET_RE.match(marker)
        if m:
            counts["snippet"] += 1
            check_snippet(block, m.group(1), roots, errors)
        elif marker == "not-code":
            counts["not-code"] += 1
            if block.info in SOURCE_LANGUAGES:
                errors.append(
                    "%s:%d: a %s block cannot be <!-- not-code -->: point it "
                    "at the tested file it shows with <!-- snippet: PATH -->"
                    % (doc, marker_line, block.info))
        else:
            errors.append("%s:%d: unknown marker <!-- %s -->: %s"
                          % (doc, marker_line, marker, HELP))


def main(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=".")
    parser.add_argument("--fallback_root")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("docs", nargs="+")
    args = parser.parse_args(argv)
    roots = [args.root] + ([args.fallback_root] if args.fallback_root else [])
    counts = {"snippet": 0, "not-code": 0}
    errors = []
    for doc in args.docs:
        check_doc(doc, roots, counts, errors)
    for e in errors:
        print(e, file=sys.stderr)
    summary = "%d Markdown files, %d code blocks: %d snippet, %d not-code" % (
        len(args.docs), counts["snippet"] + counts["not-code"],
        counts["snippet"], counts["not-code"])
    if errors:
        print("FAIL: %d error(s); %s" % (len(errors), summary), file=sys.stderr)
        return 1
    if not args.quiet:
        print("OK: " + summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
