#!/usr/bin/env bash
# The test program of the workflows_fake_server_test targets in BUILD.bazel:
# what a user's test sees. Reads the seeded workflow and the scripted
# failure through workflows_cli, over TLS when WORKFLOWS_FAKE_TLS_CA_FILE is
# set, and checks the control variables.
#   rule_checks.sh <workflows_cli> [expected control token file contents]
set -uo pipefail
cli="$1" want_token="${2:-}"
fail() { echo "FAIL: $*" >&2; exit 1; }

[[ "${WORKFLOWS_FAKE_ADDRESS:-}" =~ ^127\.0\.0\.1:[0-9]+$ ]] ||
  fail "WORKFLOWS_FAKE_ADDRESS='${WORKFLOWS_FAKE_ADDRESS:-}'"
[[ "${WORKFLOWS_FAKE_ADDRESS}" == "127.0.0.1:${WORKFLOWS_FAKE_PORT:-}" ]] ||
  fail "WORKFLOWS_FAKE_PORT='${WORKFLOWS_FAKE_PORT:-}' does not match"
[[ "${WORKFLOWS_FAKE_CONTROL_ADDRESS:-}" == "${WORKFLOWS_FAKE_ADDRESS}" ]] ||
  fail "WORKFLOWS_FAKE_CONTROL_ADDRESS='${WORKFLOWS_FAKE_CONTROL_ADDRESS:-}'"
if [[ -n "${want_token}" ]]; then
  [[ -r "${WORKFLOWS_FAKE_CONTROL_TOKEN_FILE:-}" ]] ||
    fail "WORKFLOWS_FAKE_CONTROL_TOKEN_FILE='${WORKFLOWS_FAKE_CONTROL_TOKEN_FILE:-}' unreadable"
  [[ "$(<"${WORKFLOWS_FAKE_CONTROL_TOKEN_FILE}")" == "${want_token}" ]] ||
    fail "the token file does not hold the configured token"
else
  [[ -z "${WORKFLOWS_FAKE_CONTROL_TOKEN_FILE:-}" ]] ||
    fail "WORKFLOWS_FAKE_CONTROL_TOKEN_FILE set without control_token_file"
fi

if [[ -n "${WORKFLOWS_FAKE_TLS_CA_FILE:-}" ]]; then
  grep -q "BEGIN CERTIFICATE" "${WORKFLOWS_FAKE_TLS_CA_FILE}" ||
    fail "WORKFLOWS_FAKE_TLS_CA_FILE holds no certificate"
  transport=(--ca_cert="${WORKFLOWS_FAKE_TLS_CA_FILE}" --token=test-token)
else
  transport=(--insecure)
fi

out="$("${cli}" --target="${WORKFLOWS_FAKE_ADDRESS}" "${transport[@]}" \
  get-workflow ci@example.com:rule_seeded 2>&1)" ||
  fail "get-workflow of the seeded workflow failed: ${out}"
grep -q "Seeded for the rule" <<<"${out}" || fail "seeded workflow missing: ${out}"

if out="$("${cli}" --target="${WORKFLOWS_FAKE_ADDRESS}" "${transport[@]}" \
    get-workflow ci@example.com:broken 2>&1)"; then
  fail "the broken workflow should fail, got: ${out}"
fi
grep -q "FAILED_PRECONDITION" <<<"${out}" || fail "want FAILED_PRECONDITION: ${out}"
echo "PASS"
