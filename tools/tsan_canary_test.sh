#!/usr/bin/env bash
# Checks that a planted race in our own code is reported under --config=tsan.
set -uo pipefail
canary="$1"
output="$("${canary}" 2>&1)"
code=$?
if grep -q "^not a tsan build" <<<"${output}"; then
  echo "not built with ThreadSanitizer: nothing to check (passes)."
  exit 0
fi
if [[ ${code} -ne 0 ]] && grep -q "ThreadSanitizer: data race" <<<"${output}"; then
  echo "ThreadSanitizer reported the planted race, as it must."
  exit 0
fi
echo "FAIL: the planted race was not reported (exit ${code}). Suppressions or" \
     "the tsan config hide races in project code. Output:" >&2
echo "${output}" >&2
exit 1
