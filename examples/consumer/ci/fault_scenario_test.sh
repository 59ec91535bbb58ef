#!/usr/bin/env bash
# CI-style fault injection, as a downstream project runs it: the checks of
# //ci:fault_scenario_test, run by workflows_fake_server_test against the
# standalone fake it started with our scenario file (its address is in
# WORKFLOWS_FAKE_ADDRESS). The rule stops the fake afterwards, fails the test
# unless it exits 0 after SIGTERM, and keeps its journal in the outputs.
#   fault_scenario_test.sh <workflows_cli>
set -uo pipefail
cli="$1"
target="${WORKFLOWS_FAKE_ADDRESS:?run by workflows_fake_server_test}"

fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Health is NOT_SERVING: the probe exits non-zero and says why.
if out="$("${cli}" --target="${target}" --insecure health 2>&1)"; then
  fail "health should fail under the outage scenario, got: ${out}"
fi
grep -q "NOT_SERVING" <<<"${out}" || fail "health output lacks NOT_SERVING: ${out}"

# 2. The seeded workflow is readable.
out="$("${cli}" --target="${target}" --insecure get-workflow ci@example.com:report 2>&1)" ||
  fail "get-workflow of the seeded workflow failed: ${out}"
grep -q "Nightly report" <<<"${out}" || fail "seeded workflow missing: ${out}"

# 3. The scripted failure reaches the client with its code.
if out="$("${cli}" --target="${target}" --insecure get-workflow ci@example.com:broken 2>&1)"; then
  fail "the broken workflow should fail, got: ${out}"
fi
grep -q "FAILED_PRECONDITION" <<<"${out}" || fail "expected FAILED_PRECONDITION: ${out}"

# 4. The journal has both GetWorkflow calls: asked through the control
#    service with the kit's Python harness (@workflows_grpc//python).
python_root="${TEST_SRCDIR:?}/workflows_grpc/python"
calls="$(PYTHONPATH="${python_root}" /usr/bin/python3 -c '
from workflows_fake import FakeControl
with FakeControl.from_environment() as control:
    print(control.count_calls("GetWorkflow"))
')" || fail "reading the journal through the control service failed"
[[ ${calls} -eq 2 ]] || fail "journal has ${calls} GetWorkflow calls, want 2"
echo "PASS: consumer fault scenario"
