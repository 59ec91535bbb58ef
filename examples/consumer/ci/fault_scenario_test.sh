#!/usr/bin/env bash
# CI-style fault injection, as a downstream project runs it: start the
# standalone fake from @workflows_grpc with our own scenario file, probe it
# with workflows_cli, stop it with SIGTERM and read its journal.
set -uo pipefail
server="$1" cli="$2" scenario="$3"
tmp="${TEST_TMPDIR:-$(mktemp -d)}"
port_file="${tmp}/port" journal="${tmp}/journal.textproto" log="${tmp}/server.log"

fail() { echo "FAIL: $*" >&2; echo "--- server log:" >&2; cat "${log}" >&2; exit 1; }

"${server}" --listen=127.0.0.1:0 --port_file="${port_file}" \
    --scenario="${scenario}" --journal="${journal}" >"${log}" 2>&1 &
pid=$!
trap 'kill -9 ${pid} 2>/dev/null' EXIT

# Readiness: the port file appears once the server is serving (bounded).
for _ in $(seq 1 200); do
  [[ -s "${port_file}" ]] && break
  kill -0 "${pid}" 2>/dev/null || fail "server exited before serving"
  sleep 0.05
done
[[ -s "${port_file}" ]] || fail "no port file after 10 s"
target="127.0.0.1:$(cat "${port_file}")"

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

# 4. SIGTERM: graceful exit 0, journal written with both GetWorkflow calls.
kill -TERM "${pid}"
wait "${pid}"
code=$?
trap - EXIT
[[ ${code} -eq 0 ]] || fail "server exit code ${code} after SIGTERM"
[[ -s "${journal}" ]] || fail "journal not written"
calls=$(grep -c 'method: "/descarteslabs.workflows.WorkflowAPI/GetWorkflow"' "${journal}")
[[ ${calls} -eq 2 ]] || fail "journal has ${calls} GetWorkflow calls, want 2"
echo "PASS: consumer fault scenario"
