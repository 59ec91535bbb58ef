#!/usr/bin/env bash
# Runs a Python 3 test script (standard library only) with Debian's python3,
# for sh_test: Bazel 4's py_test stub starts `python` from PATH, which Debian
# does not install. The runfiles root is put on PYTHONPATH, so scripts import
# each other by repository path (`from tools import check_doc_snippets`).
#   python3_test.sh <script, runfiles-relative ($(rootpath ...))> [args...]
set -euo pipefail
runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
python=/usr/bin/python3
if [[ ! -x "${python}" ]]; then
  python="$(command -v python3 || true)"
fi
if [[ -z "${python}" ]]; then
  echo "FAIL: python3 is required (apt-get install python3)" >&2
  exit 1
fi
script="$1"
shift
export PYTHONPATH="${runfiles}${PYTHONPATH:+:${PYTHONPATH}}"
exec "${python}" "${runfiles}/${script}" "$@"
