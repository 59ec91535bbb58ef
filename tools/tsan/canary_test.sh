#!/usr/bin/env bash
# Checks that a planted race in our own code is reported under --config=tsan,
# and that it is the first report: the summary must name the canary's own
# source file. A report from inside a system library first means the
# suppressions are too narrow; no report means they are too broad (or the
# build is not instrumented). Both fail.
#   canary_test.sh <canary binary> <canary source file name>
set -uo pipefail
canary="$1"
source_file="$2"
output="$("${canary}" 2>&1)"
code=$?
if grep -q "^not a tsan build" <<<"${output}"; then
  echo "not built with ThreadSanitizer: nothing to check (passes)."
  exit 0
fi
if [[ ${code} -ne 0 ]] &&
    grep -q "^SUMMARY: ThreadSanitizer: data race .*${source_file}" <<<"${output}"; then
  echo "ThreadSanitizer reported the planted race in ${source_file}, as it must."
  exit 0
fi
echo "FAIL: the planted race in ${source_file} was not the report (exit" \
     "${code}). Either tools/tsan/tsan.supp hides races in project code, or it" \
     "lets a system-library report through first. Output:" >&2
echo "${output}" >&2
exit 1
