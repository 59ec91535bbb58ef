#!/usr/bin/env bash
# Builds the benchmarks with -c opt, runs them all (subjects interleaved at
# random, repeated, medians) and prints a markdown table of fake vs bare
# grpc++. Unary and load subjects are paired: each benchmark runs a bare and
# a fake server side by side and alternates batches between them, so the
# ratio is immune to the machine's drift. The last line is `worst_overhead_ratio=<x>`: the largest fake/bare
# time ratio among the unary and load comparisons.
#
#   bench/run.sh                       # 5 repetitions
#   BENCH_REPETITIONS=9 bench/run.sh   # steadier on a busy machine
#   BAZEL_OUTPUT_BASE=/tmp/bazel-me bench/run.sh
#   BENCH_BINARY=path/to/workflows_bench bench/run.sh   # skip the build
set -euo pipefail

cd "$(dirname "$0")/.."
repetitions="${BENCH_REPETITIONS:-5}"
min_time="${BENCH_MIN_TIME:-0.2}"
bazel_cmd=(bazel)
if [[ -n "${BAZEL_OUTPUT_BASE:-}" ]]; then
  bazel_cmd+=("--output_base=${BAZEL_OUTPUT_BASE}")
fi

if [[ -n "${BENCH_BINARY:-}" ]]; then
  bench_binary="${BENCH_BINARY}"  # already built, e.g. while bazel is busy
else
  "${bazel_cmd[@]}" build -c opt //bench:workflows_bench \
      //bench:thousand_fixture_tests >&2
  bench_binary="$("${bazel_cmd[@]}" info -c opt bazel-bin 2>/dev/null)/bench/workflows_bench"
fi
thousand_binary="$(dirname "${bench_binary}")/thousand_fixture_tests"
out="$(mktemp /tmp/workflows_bench.XXXXXX.json)"
trap 'rm -f "${out}"' EXIT

"${bench_binary}" \
  --benchmark_repetitions="${repetitions}" \
  --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true \
  --benchmark_min_time="${min_time}" \
  --benchmark_format=json \
  --benchmark_out="${out}" --benchmark_out_format=json >/dev/null

# 1,000 fixture-based gtest cases in one binary: the suite's wall time, from
# gtest's own "(N ms total)" line. A failing case fails the run.
thousand_log="$(mktemp /tmp/thousand_fixture_tests.XXXXXX.log)"
trap 'rm -f "${out}" "${thousand_log}"' EXIT
if ! "${thousand_binary}" --gtest_brief=1 >"${thousand_log}" 2>&1; then
  cat "${thousand_log}" >&2
  echo "thousand_fixture_tests failed" >&2
  exit 1
fi
thousand_ms="$(sed -nE 's/.*1000 tests from 1 test suite ran\. \(([0-9]+) ms total\).*/\1/p' \
    "${thousand_log}")"
if [[ -z "${thousand_ms}" ]]; then
  cat "${thousand_log}" >&2
  echo "thousand_fixture_tests: no '1000 tests ... (N ms total)' line" >&2
  exit 1
fi

/usr/bin/python3 - "${out}" "${thousand_ms:-}" <<'PY'
import json
import sys

with open(sys.argv[1]) as f:
    data = json.load(f)

TO_US = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}
medians = {}
errors = []
for b in data["benchmarks"]:
    if b.get("error_occurred"):
        errors.append("%s: %s" % (b["name"], b.get("error_message", "")))
        continue
    if b.get("run_type") != "aggregate" or b.get("aggregate_name") != "median":
        continue
    name = b["run_name"]
    for suffix in ("/real_time", "/iterations:1"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    b["real_us"] = b["real_time"] * TO_US[b["time_unit"]]
    medians[name] = b

for e in errors:
    print("ERROR " + e, file=sys.stderr)


def get(name, key):
    b = medians.get(name)
    if b is None or key not in b:
        return None
    return float(b[key])


rows = []
worst = 0.0


def fmt(x, digits):
    return "n/a" if x is None else ("%.*f" % (digits, x))


def row(subject, base, fake, ratio, digits=1, counts_toward_worst=False):
    global worst
    rows.append((subject, fmt(base, digits), fmt(fake, digits),
                 "n/a" if ratio is None else "%.3f" % ratio))
    if counts_toward_worst and ratio is not None:
        worst = max(worst, ratio)


def time_row(subject, base, fake, worst_row=False, digits=1):
    b = get(base, "real_us")
    f = get(fake, "real_us")
    ratio = f / b if b and f else None
    row(subject + " (us/call)" if worst_row else subject + " (us)", b, f,
        ratio, digits, worst_row)


# Unary and load are paired: bare and fake run in the same benchmark, batch
# by batch, and `ratio` is fake time / bare time over the same moments
# (median over repetitions).
missing = []


def paired_row(subject, name, load=False):
    if load:
        b = get(name, "bare_qps")
        f = get(name, "fake_qps")
        subject += " (QPS; ratio = bare/fake)"
        digits = 0
    else:
        b = get(name, "bare_us_per_call")
        f = get(name, "fake_us_per_call")
        subject += " (us/call)"
        digits = 1
    ratio = get(name, "ratio")
    if ratio is None:
        missing.append(name)
    row(subject, b, f, ratio, digits, True)


NETS = (("inproc", "in-process"), ("tcp", "loopback TCP"), ("tls", "TLS"))
VARIANTS = (("fake", "pass-through"), ("fake_scripted", "scripted reply"),
            ("fake_gmock", "gMock backend (fall-through)"),
            ("fake_nojournal", "pass-through, journal disabled"))
for net, net_label in NETS:
    for side, side_label in VARIANTS:
        paired_row("unary GetJob, %s, %s" % (net_label, side_label),
                   "BM_UnaryPaired/%s/%s" % (net, side))
for net, net_label in NETS:
    paired_row("load, 32 client threads, %s" % net_label,
               "BM_LoadPaired/%s/fake" % net, load=True)
paired_row("load, 32 client threads, in-process, journal disabled",
           "BM_LoadPaired/inproc/fake_nojournal", load=True)

b = get("BM_WatchJob/inproc/bare", "items_per_second")
f = get("BM_WatchJob/inproc/fake", "items_per_second")
row("WatchJob stream of 1000 states, in-process (msg/s; ratio = bare/fake)",
    b, f, b / f if b and f else None, 0)
time_row("server start + stop, in-process", "BM_StartStop/inproc/bare",
         "BM_StartStop/inproc/fake")
time_row("fixture: start, connect, 1 RPC, teardown (WorkflowsTest)",
         "BM_Fixture/inproc/bare", "BM_Fixture/inproc/fake")
thousand_ms = float(sys.argv[2]) if sys.argv[2] else None
row("1,000 fixture-based gtest cases in one binary (s)", None,
    thousand_ms / 1000.0 if thousand_ms is not None else None, None, 2)
b = get("BM_IdleServerRss/inproc/bare", "rss_kib_per_server")
f = get("BM_IdleServerRss/inproc/fake", "rss_kib_per_server")
row("idle server RSS, in-process, of 100 servers (KiB/server)", b, f,
    f / b if b and f and b > 0 else None)
b = get("BM_Journal10k/inproc/disabled", "rss_kib_per_10k")
f = get("BM_Journal10k/inproc/enabled", "rss_kib_per_10k")
row("RSS growth per 10,000 calls, journal off vs on (KiB)", b, f,
    f / b if b and f and b > 0 else None)
f = get("BM_Journal10k/inproc/enabled", "journal_bytes_per_call")
row("journal bytes per recorded call (heap in use growth / calls)", None, f,
    None)
c = get("BM_Journal10k/inproc/capped1000", "retained_calls")
d = get("BM_Journal10k/inproc/capped1000", "dropped_calls")
row("journal max_calls=1000 after 10,000 calls: retained / dropped", c, d,
    None, 0)

print("| subject | baseline (bare grpc++) | fake | ratio |")
print("|---|---:|---:|---:|")
for r in rows:
    print("| %s | %s | %s | %s |" % r)
print()
if errors or missing:
    # No ratio line: a worst ratio over a partial set would understate it.
    for name in missing:
        print("MISSING " + name + ": no ratio (benchmark failed or absent)",
              file=sys.stderr)
    sys.exit(1)
print("worst_overhead_ratio=%.3f" % worst)
PY
