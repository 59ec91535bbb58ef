#!/usr/bin/env bash
# The test program in launcher_test.sh, run by the launcher. As
# $STUB_TEST_MODE says:
#   env      records its arguments and the WORKFLOWS_FAKE_* variables in
#            $STUB_TEST_DIR/env, exits 0
#   fail7    exits 7
#   block    writes its pid to $STUB_TEST_DIR/pid and "ready" to the FIFO
#            $STUB_TEST_DIR/ready, then waits; on SIGTERM it writes
#            $STUB_TEST_DIR/test_term and exits 143
#   cli      reads the seeded workflow from the real fake with
#            workflows_cli ($STUB_TEST_CLI)
set -uo pipefail
case "${STUB_TEST_MODE}" in
  env)
    {
      printf 'arg=%s\n' "$@"
      env | grep '^WORKFLOWS_FAKE_' | sort
    } >"${STUB_TEST_DIR}/env"
    ;;
  fail7) echo "stub test: failing with 7 (scripted)" >&2; exit 7 ;;
  block)
    trap 'echo term >"${STUB_TEST_DIR}/test_term"; exit 143' TERM
    echo $$ >"${STUB_TEST_DIR}/pid"
    fifo="$(mktemp -u "${STUB_TEST_DIR}/wait.XXXXXX")"
    mkfifo "${fifo}"
    exec 3<>"${fifo}"
    echo ready >"${STUB_TEST_DIR}/ready"
    while true; do read -r -u 3 _; done
    ;;
  cli)
    "${STUB_TEST_CLI}" --target="${WORKFLOWS_FAKE_ADDRESS}" --insecure \
      get-workflow ci@example.com:rule_seeded
    ;;
  *) echo "stub test: unknown mode '${STUB_TEST_MODE}'" >&2; exit 99 ;;
esac
