#!/usr/bin/env python3
"""Counts test results from Bazel Build Event Protocol (BEP) JSON files.

usage: count_tests.py BEP.json [BEP.json ...]

Prints "passed=N failed=M". A test target that failed to build, or was
skipped because the build broke, counts as failed; each failure is named on
stderr.
"""
import json
import sys


def count(path):
    test_targets = set()
    summaries = {}
    broken = set()
    with open(path) as f:
        for line in f:
            event = json.loads(line)
            ident = event.get("id", {})
            if "targetConfigured" in ident:
                kind = event.get("configured", {}).get("targetKind", "")
                if kind.endswith("_test rule"):
                    test_targets.add(ident["targetConfigured"]["label"])
            elif "testSummary" in ident:
                summaries[ident["testSummary"]["label"]] = event.get(
                    "testSummary", {}).get("overallStatus", "NO_STATUS")
            elif "targetCompleted" in ident:
                completed = event.get("completed")
                if "aborted" in event or (completed is not None
                                          and not completed.get("success")):
                    broken.add(ident["targetCompleted"]["label"])
    passed, failures = 0, []
    for label in sorted(test_targets | set(summaries)):
        status = summaries.get(label)
        if status in ("PASSED", "FLAKY"):
            passed += 1
        else:
            failures.append(
                f"{label} {status or ('FAILED_TO_BUILD' if label in broken else 'NO_STATUS')}")
    return passed, failures


def main(argv):
    total_passed, total_failed = 0, 0
    for path in argv[1:]:
        try:
            passed, failures = count(path)
        except (OSError, ValueError) as e:
            print(f"count_tests.py: cannot read {path}: {e}", file=sys.stderr)
            total_failed += 1
            continue
        total_passed += passed
        total_failed += len(failures)
        for failure in failures:
            print(f"  failed: {failure}", file=sys.stderr)
    print(f"passed={total_passed} failed={total_failed}")


if __name__ == "__main__":
    main(sys.argv)
