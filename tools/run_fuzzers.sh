#!/usr/bin/env bash
# Builds the libFuzzer targets of //fuzz with clang-14 (--config=fuzz) and
# runs each for SECONDS (default 60) on a copy of its seed corpus, so the
# repository is never modified. Exits non-zero if any fuzzer crashes, leaks,
# times out or runs out of memory, printing the path of the crashing input.
#
#   tools/run_fuzzers.sh            # 60 s each
#   tools/run_fuzzers.sh 10         # a quick smoke run
#   FUZZERS="scenario_fuzzer" tools/run_fuzzers.sh 300
#
# The fuzz build uses its own Bazel output base ($FUZZ_OUTPUT_BASE, default
# ~/.cache/workflows_grpc_fuzz): switching CC to clang-14 re-configures the
# C++ toolchain, which must not invalidate the main (GCC) build's cache.
# A crash found is a bug: fix it and add the input to fuzz/corpus/<fuzzer>/
# so //fuzz:<fuzzer>_regression_test keeps checking it.

set -euo pipefail

seconds="${1:-60}"
if ! [[ "${seconds}" =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
  echo "usage: $0 [SECONDS]   (a positive integer, default 60)" >&2
  exit 2
fi
fuzzers=(${FUZZERS:-scenario_fuzzer control_service_fuzzer client_parsers_fuzzer})
output_base="${FUZZ_OUTPUT_BASE:-${HOME}/.cache/workflows_grpc_fuzz}"
workspace="$(cd "$(dirname "$0")/.." && pwd)"
cd "${workspace}"

if ! command -v clang-14 >/dev/null; then
  echo "clang-14 is missing: apt-get install clang-14 libclang-rt-14-dev" >&2
  exit 2
fi

targets=()
for fuzzer in "${fuzzers[@]}"; do targets+=("//fuzz:${fuzzer}"); done
echo "== building ${targets[*]} (clang-14, output base ${output_base})"
bazel --output_base="${output_base}" build --config=fuzz "${targets[@]}"
bin_dir="$(bazel --output_base="${output_base}" info --config=fuzz bazel-bin)"

work="$(mktemp -d "${TMPDIR:-/tmp}/run_fuzzers.XXXXXX")"
echo "== working directory ${work} (kept: crash inputs and logs)"
failed=()
summary=()
for fuzzer in "${fuzzers[@]}"; do
  corpus="${work}/${fuzzer}/corpus"
  artifacts="${work}/${fuzzer}/artifacts/"
  log="${work}/${fuzzer}/fuzz.log"
  mkdir -p "${corpus}" "${artifacts}"
  cp -R "fuzz/corpus/${fuzzer}/." "${corpus}/"
  echo "== ${fuzzer}: ${seconds} s on $(ls "${corpus}" | wc -l) seeds"
  dict_args=()
  if [[ -f "fuzz/${fuzzer}.dict" ]]; then
    dict_args=("-dict=${workspace}/fuzz/${fuzzer}.dict")
  fi
  # The scenario fuzzers parse with a 16 KiB size cap (see their sources):
  # -max_len is that plus a margin, so inputs can reach and pass the cap.
  len_args=()
  case "${fuzzer}" in
    scenario_fuzzer | control_service_fuzzer) len_args=("-max_len=20480") ;;
  esac
  status=0
  # detect_leaks stays on: a leak per input is a bug too.
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}" \
    "${bin_dir}/fuzz/${fuzzer}" \
    -max_total_time="${seconds}" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="${artifacts}" "${dict_args[@]}" \
    "${len_args[@]}" \
    "${corpus}" >"${log}" 2>&1 || status=$?
  stats="$(grep -E '^#[0-9]+[[:space:]]+DONE' "${log}" | tail -1 || true)"
  execs="$(grep -E '^stat::number_of_executed_units' "${log}" | awk '{print $2}')"
  rate="$(grep -E '^stat::average_exec_per_sec' "${log}" | awk '{print $2}')"
  summary+=("${fuzzer}: exit=${status} execs=${execs:-?} execs/s=${rate:-?} ${stats}")
  crashes=("${artifacts}"*)
  if (( status != 0 )) || [[ -e "${crashes[0]}" ]]; then
    failed+=("${fuzzer}")
    echo "!! ${fuzzer} FAILED (exit ${status}); log: ${log}" >&2
    grep -E 'ERROR: |invariant failed|SUMMARY:|Test unit written' "${log}" \
      | head -20 >&2 || true
    for crash in "${artifacts}"*; do
      [[ -e "${crash}" ]] && echo "!! crashing input: ${crash}" >&2
    done
  fi
done

echo "== summary"
printf '%s\n' "${summary[@]}"
if (( ${#failed[@]} > 0 )); then
  echo "FAILED: ${failed[*]} (inputs and logs under ${work})" >&2
  exit 1
fi
echo "all fuzzers ran ${seconds} s without a crash (logs under ${work})"
