#!/usr/bin/env bash
# Tests fake_server_test_launcher.sh directly, with stand-in servers and
# tests (stub_server.sh, stub_test.sh) for the failure cases and the real
# workflows_fake_server for the journal. Nothing here sleeps to wait: every
# hand-off is a FIFO read.
#   launcher_test.sh <launcher> <stub server> <stub test> <real server>
#                    <workflows_cli> <scenario> <token file>
set -uo pipefail
launcher="$(realpath "$1")" stub_server="$(realpath "$2")"
stub_test="$(realpath "$3")" real_server="$(realpath "$4")"
cli="$(realpath "$5")" scenario="$(realpath "$6")" token="$(realpath "$7")"
failures=0
case_dir=""

fail() { echo "FAIL [${case_name}]: $*" >&2; failures=$(( failures + 1 )); }

# new_case <name>: a fresh directory for the stubs and the outputs.
new_case() {
  case_name="$1"
  case_dir="$(mktemp -d "${TEST_TMPDIR}/${case_name}.XXXXXX")"
  mkdir "${case_dir}/outputs"
  export STUB_SERVER_DIR="${case_dir}" STUB_TEST_DIR="${case_dir}"
  export TEST_UNDECLARED_OUTPUTS_DIR="${case_dir}/outputs"
  echo "=== ${case_name}"
}

# run_launcher <launcher args...>: sets code and err (its stderr).
run_launcher() {
  "${launcher}" "$@" >"${case_dir}/stdout" 2>"${case_dir}/stderr"
  code=$?
  err="$(<"${case_dir}/stderr")"
}

expect_code() {
  [[ "${code}" -eq "$1" ]] || fail "launcher exit status ${code}, want $1; stderr: ${err}"
}
expect_err() {
  grep -qF -- "$1" <<<"${err}" || fail "stderr lacks '$1': ${err}"
}

new_case clean_server_passing_test_passes
STUB_SERVER_MODE=clean STUB_TEST_MODE=env run_launcher \
  --server="${stub_server}" --control_token_file="${token}" \
  --server_flag=--simulated_clock -- "${stub_test}" "two words" x
expect_code 0
env_file="$(<"${case_dir}/env")"
for want in "arg=two words" "arg=x" \
    "WORKFLOWS_FAKE_ADDRESS=127.0.0.1:4242" \
    "WORKFLOWS_FAKE_CONTROL_ADDRESS=127.0.0.1:4242" \
    "WORKFLOWS_FAKE_PORT=4242" \
    "WORKFLOWS_FAKE_CONTROL_TOKEN_FILE=${token}"; do
  grep -qxF -- "${want}" <<<"${env_file}" || fail "test env lacks '${want}': ${env_file}"
done
grep -q "WORKFLOWS_FAKE_TLS_CA_FILE" <<<"${env_file}" &&
  fail "WORKFLOWS_FAKE_TLS_CA_FILE set without --tls: ${env_file}"
log="$(<"${case_dir}/outputs/workflows_fake_server.log")"
for want in "--listen=127.0.0.1:0" "--simulated_clock" \
    "--control_token_file=${token}" \
    "--journal=${case_dir}/outputs/workflows_fake_journal.textproto"; do
  grep -qF -- "${want}" <<<"${log}" || fail "server args lack '${want}': ${log}"
done
[[ -f "${case_dir}/term" ]] || fail "the server got no SIGTERM"

new_case server_exits_before_serving_fails
STUB_SERVER_MODE=early_exit STUB_TEST_MODE=env run_launcher \
  --server="${stub_server}" -- "${stub_test}"
expect_code 1
expect_err "the server exited with status 3 before serving"
expect_err "stub server: cannot bind (scripted)"  # its log is shown
[[ -f "${case_dir}/env" ]] && fail "the test ran although the server never served"

new_case server_exit_1_after_sigterm_fails_passing_test
STUB_SERVER_MODE=exit1_on_term STUB_TEST_MODE=env run_launcher \
  --server="${stub_server}" -- "${stub_test}"
expect_code 1
expect_err "the server exited with status 1 after SIGTERM (want 0)"
[[ -f "${case_dir}/env" ]] || fail "the test did not run"

new_case server_ignoring_sigterm_is_killed_and_fails
STUB_SERVER_MODE=ignore_term STUB_TEST_MODE=env run_launcher \
  --server="${stub_server}" --stop_timeout=1 -- "${stub_test}"
expect_code 1
expect_err "the server did not exit within 1 s of SIGTERM; killing it"
expect_err "the server was killed by signal 9 after SIGTERM"

new_case server_without_port_file_times_out
STUB_SERVER_MODE=no_port STUB_TEST_MODE=env run_launcher \
  --server="${stub_server}" --startup_timeout=1 -- "${stub_test}"
expect_code 1
expect_err "the server wrote no port file within 1 s"
[[ -f "${case_dir}/term" ]] || fail "the server was not stopped with SIGTERM"

new_case failing_test_status_is_propagated
STUB_SERVER_MODE=clean STUB_TEST_MODE=fail7 run_launcher \
  --server="${stub_server}" -- "${stub_test}"
expect_code 7
expect_err "the test failed with status 7"
[[ -f "${case_dir}/term" ]] || fail "the server was not stopped"

new_case managed_server_flags_are_refused
for flag in --listen=0.0.0.0:1 --port_file=/tmp/p --journal=/tmp/j \
    --control_token_file=/tmp/t --tls_self_signed_dir=/tmp/d; do
  STUB_SERVER_MODE=clean STUB_TEST_MODE=env run_launcher \
    --server="${stub_server}" --server_flag="${flag}" -- "${stub_test}"
  expect_code 2
  expect_err "--server_flag=${flag}:"
done
[[ -f "${case_dir}/env" ]] && fail "the test ran despite a refused flag"

new_case sigterm_to_launcher_stops_test_and_server
mkfifo "${case_dir}/ready"
STUB_SERVER_MODE=clean STUB_TEST_MODE=block \
  "${launcher}" --server="${stub_server}" -- "${stub_test}" \
  >"${case_dir}/stdout" 2>"${case_dir}/stderr" &
launcher_pid=$!
read -r _ <"${case_dir}/ready"  # the test is running
kill -TERM "${launcher_pid}"
wait "${launcher_pid}"
code=$?
err="$(<"${case_dir}/stderr")"
expect_code 143
expect_err "got SIGTERM; stopping the test and the server"
[[ -f "${case_dir}/test_term" ]] || fail "the test got no SIGTERM"
[[ "$(<"${case_dir}/term")" == "got TERM" ]] || fail "the server got no SIGTERM"
test_pid="$(<"${case_dir}/pid")"
kill -0 "${test_pid}" 2>/dev/null && fail "the test (pid ${test_pid}) outlived the launcher"

if command -v setpriv >/dev/null 2>&1; then
  new_case sigkill_to_launcher_still_stops_server
  mkfifo "${case_dir}/ready" "${case_dir}/stopped"
  STUB_SERVER_MODE=clean STUB_TEST_MODE=block \
    "${launcher}" --server="${stub_server}" -- "${stub_test}" \
    >"${case_dir}/stdout" 2>"${case_dir}/stderr" &
  launcher_pid=$!
  read -r _ <"${case_dir}/ready"
  # Open "stopped" before the kill, so the server's write cannot block.
  exec 4<>"${case_dir}/stopped"
  kill -KILL "${launcher_pid}"
  wait "${launcher_pid}"
  read -r -u 4 stopped  # the server's SIGTERM handler writes it
  exec 4<&-
  [[ "${stopped}" == stopped ]] || fail "the server did not report a SIGTERM"
  kill -TERM "$(<"${case_dir}/pid")" 2>/dev/null  # the orphaned stub test
fi

new_case real_server_journal_lands_in_outputs
STUB_TEST_MODE=cli STUB_TEST_CLI="${cli}" run_launcher \
  --server="${real_server}" --scenario="${scenario}" -- "${stub_test}"
expect_code 0
grep -q "Seeded for the rule" "${case_dir}/stdout" ||
  fail "the test did not read the seeded workflow: $(<"${case_dir}/stdout")"
journal="${case_dir}/outputs/workflows_fake_journal.textproto"
if [[ ! -f "${journal}" ]]; then
  fail "no journal in the outputs directory: $(ls -la "${case_dir}/outputs")"
else
  calls=$(grep -c 'method: "/descarteslabs.workflows.WorkflowAPI/GetWorkflow"' "${journal}")
  [[ "${calls}" -eq 1 ]] || fail "the journal has ${calls} GetWorkflow calls, want 1"
  mode="$(stat -c %a "${journal}")"
  [[ "${mode}" == 600 ]] || fail "journal mode ${mode}, want 600"
fi
grep -q "serving on 127.0.0.1:" "${case_dir}/outputs/workflows_fake_server.log" ||
  fail "server log lacks its banner"
mode="$(stat -c %a "${case_dir}/outputs/workflows_fake_server.log")"
[[ "${mode}" == 600 ]] || fail "server log mode ${mode}, want 600"

if (( failures > 0 )); then
  echo "${failures} failure(s)" >&2
  exit 1
fi
echo "PASS: all launcher cases"
