#!/usr/bin/env bash
# Instructions per in-process unary GetJob, bare grpc++ vs each fake variant,
# counted by callgrind (valgrind). Unlike wall time, the counts are the same
# on a busy machine and a quiet one, so they show small overheads reliably;
# they do not see lock contention or cache misses, which bench/run.sh does.
#
#   bench/instructions.sh            # 1,000 calls per side, 3 rounds
#   CALLS=3000 ROUNDS=5 bench/instructions.sh
#
# Each side runs twice, with CALLS and 2*CALLS calls; the difference of the
# two totals divided by CALLS is the cost of one call, start-up excluded.
# gRPC's pollers wake a varying number of times, so one such difference
# varies by a few percent from run to run; each number is the median of
# ROUNDS (default 3) differences.
set -euo pipefail
cd "$(dirname "$0")/.."
calls="${CALLS:-1000}"
rounds="${ROUNDS:-3}"
if ! command -v valgrind >/dev/null; then
  echo "instructions.sh: valgrind is not installed (run tools/setup.sh as root)" >&2
  exit 1
fi
bazel build -c opt //bench:unary_instructions >&2
binary="$(bazel info -c opt bazel-bin 2>/dev/null)/bench/unary_instructions"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

total_instructions() {  # <side> <calls>
  local out="${work}/callgrind.$1.$2"
  valgrind --tool=callgrind --callgrind-out-file="${out}" \
      "${binary}" "$1" "$2" >/dev/null 2>"${work}/log" || {
    cat "${work}/log" >&2
    echo "instructions.sh: ${binary} $1 $2 failed" >&2
    exit 1
  }
  sed -nE 's/^summary: ([0-9]+).*/\1/p' "${out}"
}

per_call() {  # <side>
  local one two round
  for (( round = 0; round < rounds; ++round )); do
    one="$(total_instructions "$1" "${calls}")"
    two="$(total_instructions "$1" $(( calls * 2 )))"
    echo $(( (two - one) / calls ))
  done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

bare="$(per_call bare)"
echo "| subject | instructions per call | ratio to bare |"
echo "|---|---|---|"
echo "| bare grpc++ | ${bare} | 1.000 |"
for side in fake fake_nojournal fake_scripted fake_gmock; do
  fake="$(per_call "${side}")"
  ratio="$(awk -v f="${fake}" -v b="${bare}" 'BEGIN { printf "%.3f", f / b }')"
  echo "| ${side} | ${fake} | ${ratio} |"
done
