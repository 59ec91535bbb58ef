#!/usr/bin/env bash
# Checks exported_symbols.bzl against a --config=tsan executable: the strong
# abseil and gRPC definitions the shims put there must be exactly the listed
# symbols (a definition missing from the list is not exported, so Debian's
# libraries would bypass it; a listed name nothing defines is stale), and
# every listed symbol must be in the executable's dynamic symbol table.
#   exported_symbols_test.sh <probe binary> <exported_symbols.inc>
set -euo pipefail
probe="$1"
list="$2"
if grep -q "^not a tsan build" <<<"$("${probe}")"; then
  echo "not built with ThreadSanitizer: nothing to check (passes)."
  exit 0
fi
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
tr -d '",' <"${list}" | sed '/^$/d' | sort -u >"${tmp}/listed"
# Strong text symbols only: inline abseil code compiled into the probe is
# weak (W); Debian's abseil and gRPC live in shared libraries.
nm --defined-only "${probe}" |
  awk '$2 == "T" { print $3 }' |
  grep -E '^(_ZN4absl|_ZNK4absl|_Z14grpc_cq_|grpc_completion_queue_|_ZN9grpc_core)' |
  sort -u >"${tmp}/defined"
nm -D --defined-only "${probe}" | awk '{ print $3 }' | sort -u >"${tmp}/exported"
status=0
if ! diff -u --label listed --label defined "${tmp}/listed" "${tmp}/defined"; then
  echo "FAIL: tools/tsan/exported_symbols.bzl and the definitions in" \
       "tools/tsan/*_annotations.cc differ (above)." >&2
  status=1
fi
missing="$(comm -23 "${tmp}/listed" "${tmp}/exported")"
if [[ -n "${missing}" ]]; then
  echo "FAIL: listed but not exported from the executable:" >&2
  echo "${missing}" >&2
  status=1
fi
if [[ ${status} -eq 0 ]]; then
  echo "$(wc -l <"${tmp}/listed") symbols listed, defined and exported."
fi
exit "${status}"
