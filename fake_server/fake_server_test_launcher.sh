#!/usr/bin/env bash
# Runs one test against a standalone fake Workflows server: the launcher
# behind workflows_fake_server_test (fake_server/defs.bzl), usable directly:
#
#   fake_server_test_launcher.sh --server=PATH [--scenario=FILE]...
#       [--server_flag=FLAG]... [--control_token_file=FILE] [--tls]
#       [--startup_timeout=SECONDS] [--stop_timeout=SECONDS]
#       -- TEST [TEST_ARGS...]
#
# 1. Starts PATH on 127.0.0.1, port 0, with --port_file, --journal, the
#    --scenario files and the extra flags, and waits at most
#    --startup_timeout (default 60 s) for the port file.
# 2. Runs TEST with, in its environment:
#      WORKFLOWS_FAKE_ADDRESS           127.0.0.1:PORT of the Workflows services
#      WORKFLOWS_FAKE_PORT              PORT alone
#      WORKFLOWS_FAKE_CONTROL_ADDRESS   the control service (the same port)
#      WORKFLOWS_FAKE_CONTROL_TOKEN_FILE  with --control_token_file only
#      WORKFLOWS_FAKE_TLS_CA_FILE       with --tls only: the CA to trust
# 3. Sends the server SIGTERM and waits at most --stop_timeout (default
#    30 s) for it to exit, then SIGKILL.
# The journal and the server's output are saved as
# workflows_fake_journal.textproto and workflows_fake_server.log in
# $TEST_UNDECLARED_OUTPUTS_DIR (a new temporary directory, printed, when
# unset). Relative paths are relative to the starting directory.
#
# Exit status: the test's when it failed; otherwise 1 when the server did
# not start, exited before the test ended, or did not exit 0 after SIGTERM;
# 2 for bad arguments; 128+N when the launcher itself got signal N (the test
# and the server are stopped first). The server is never left running: it
# is stopped on every exit path and, where setpriv(1) exists, gets SIGTERM
# if the launcher dies of SIGKILL.
set -uo pipefail
umask 077

readonly kMaxTimeoutSeconds=3600
me="workflows_fake_server_test"

usage_error() {
  echo "${me}: $*" >&2
  echo "usage: $0 --server=PATH [--scenario=FILE]... [--server_flag=FLAG]..." \
    "[--control_token_file=FILE] [--tls] [--startup_timeout=SECONDS]" \
    "[--stop_timeout=SECONDS] -- TEST [TEST_ARGS...]" >&2
  exit 2
}

absolute() {
  if [[ "$1" == /* ]]; then echo "$1"; else echo "${PWD}/$1"; fi
}

check_seconds() {  # <flag> <value>
  if [[ ! "$2" =~ ^[0-9]+$ ]] || (( $2 < 1 || $2 > kMaxTimeoutSeconds )); then
    usage_error "--$1=$2: must be a whole number of seconds, 1 to" \
      "${kMaxTimeoutSeconds}"
  fi
}

server="" token_file="" tls=0 startup_timeout=60 stop_timeout=30
scenarios=() server_flags=()
while (( $# > 0 )); do
  case "$1" in
    --server=*) server="$(absolute "${1#*=}")" ;;
    --scenario=*) scenarios+=("--scenario=$(absolute "${1#*=}")") ;;
    --server_flag=*)
      flag="${1#*=}"
      case "${flag}" in
        --listen=* | --port_file=* | --journal=*)
          usage_error "--server_flag=${flag}: the launcher sets ${flag%%=*}" \
            "itself (port 0 on loopback, journal in the outputs directory)" ;;
        --control_token_file=*)
          usage_error "--server_flag=${flag}: use --control_token_file" \
            "(control_token_file in the rule), which also tells the test" ;;
        --tls_self_signed_dir=*)
          usage_error "--server_flag=${flag}: use --tls (tls = True in the" \
            "rule), which also tells the test where the CA is" ;;
        --*) ;;
        *) usage_error "--server_flag=${flag}: not a --flag" ;;
      esac
      server_flags+=("${flag}") ;;
    --control_token_file=*) token_file="$(absolute "${1#*=}")" ;;
    --tls) tls=1 ;;
    --startup_timeout=*) startup_timeout="${1#*=}"
      check_seconds startup_timeout "${startup_timeout}" ;;
    --stop_timeout=*) stop_timeout="${1#*=}"
      check_seconds stop_timeout "${stop_timeout}" ;;
    --) shift; break ;;
    *) usage_error "unknown argument '$1' (the test comes after --)" ;;
  esac
  shift
done
(( $# > 0 )) || usage_error "no test: give it after --"
[[ -n "${server}" ]] || usage_error "--server=PATH is required"
[[ -x "${server}" ]] || usage_error "--server=${server}: not an executable file"
test_binary="$(absolute "$1")"
shift
[[ -x "${test_binary}" ]] || usage_error "${test_binary}: the test is not an executable file"
if [[ -n "${token_file}" && ! -r "${token_file}" ]]; then
  usage_error "--control_token_file=${token_file}: cannot read the file"
fi

outputs="${TEST_UNDECLARED_OUTPUTS_DIR:-}"
if [[ -z "${outputs}" ]]; then
  outputs="$(mktemp -d "${TMPDIR:-/tmp}/workflows_fake_outputs.XXXXXX")" ||
    usage_error "cannot create a directory for the journal"
  echo "${me}: journal and server log go to ${outputs}" >&2
fi
mkdir -p "${outputs}" || usage_error "cannot create ${outputs}"
work="$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/workflows_fake.XXXXXX")" ||
  usage_error "cannot create a temporary directory"
port_file="${work}/port"
journal="${outputs}/workflows_fake_journal.textproto"
log="${outputs}/workflows_fake_server.log"
rm -f "${log}"  # a rerun's; then created with O_EXCL (noclobber): no symlink followed

server_pid="" test_pid="" server_code=""

show_log() {
  echo "--- ${log} (the server's stdout and stderr), last 50 lines:" >&2
  tail -n 50 "${log}" >&2 2>/dev/null
  echo "---" >&2
}

# Stops the server if it still runs: SIGTERM, at most stop_timeout seconds,
# then SIGKILL. Sets server_code (its exit status; 137 when killed here).
stop_server() {
  [[ -n "${server_pid}" ]] || return 0
  local pid="${server_pid}" waited=0
  server_pid=""
  kill -TERM "${pid}" 2>/dev/null
  while kill -0 "${pid}" 2>/dev/null; do
    if (( waited >= stop_timeout * 20 )); then
      echo "${me}: the server did not exit within ${stop_timeout} s of" \
        "SIGTERM; killing it" >&2
      kill -KILL "${pid}" 2>/dev/null
      break
    fi
    sleep 0.05
    waited=$(( waited + 1 ))
  done
  wait "${pid}" 2>/dev/null
  server_code=$?
}

cleanup() {
  if [[ -n "${test_pid}" ]]; then
    kill -TERM "${test_pid}" 2>/dev/null
    wait "${test_pid}" 2>/dev/null
    test_pid=""
  fi
  stop_server
  rm -rf "${work}"
}
trap cleanup EXIT

on_signal() {  # <name> <number>
  trap - EXIT
  echo "${me}: got SIG$1; stopping the test and the server" >&2
  cleanup
  exit $(( 128 + $2 ))
}
trap 'on_signal TERM 15' TERM
trap 'on_signal INT 2' INT
trap 'on_signal HUP 1' HUP

# --- 1. Start the server and wait for its port file. ---
server_command=("${server}" --listen=127.0.0.1:0 --port_file="${port_file}"
  --journal="${journal}")
if (( tls )); then
  mkdir "${work}/tls" || usage_error "cannot create ${work}/tls"
  server_command+=(--tls_self_signed_dir="${work}/tls")
fi
if [[ -n "${token_file}" ]]; then
  server_command+=(--control_token_file="${token_file}")
fi
server_command+=("${scenarios[@]}" "${server_flags[@]}")
if command -v setpriv >/dev/null 2>&1; then
  # SIGTERM to the server if the launcher dies without running its traps.
  server_command=(setpriv --pdeathsig=TERM "${server_command[@]}")
fi
(set -o noclobber && exec "${server_command[@]}" </dev/null >"${log}" 2>&1) &
server_pid=$!

waited=0
until [[ -s "${port_file}" ]]; do
  if ! kill -0 "${server_pid}" 2>/dev/null; then
    wait "${server_pid}"
    code=$?
    server_pid=""
    echo "${me}: the server exited with status ${code} before serving" >&2
    show_log
    exit 1
  fi
  if (( waited >= startup_timeout * 50 )); then
    echo "${me}: the server wrote no port file within ${startup_timeout} s" >&2
    stop_server
    show_log
    exit 1
  fi
  sleep 0.02
  waited=$(( waited + 1 ))
done
port="$(<"${port_file}")"
port="${port//[[:space:]]/}"
if [[ ! "${port}" =~ ^[0-9]+$ ]]; then
  echo "${me}: the port file holds '${port}', not a port number" >&2
  exit 1
fi

# --- 2. Run the test. ---
export WORKFLOWS_FAKE_ADDRESS="127.0.0.1:${port}"
export WORKFLOWS_FAKE_PORT="${port}"
export WORKFLOWS_FAKE_CONTROL_ADDRESS="${WORKFLOWS_FAKE_ADDRESS}"
unset WORKFLOWS_FAKE_CONTROL_TOKEN_FILE WORKFLOWS_FAKE_TLS_CA_FILE
if [[ -n "${token_file}" ]]; then
  export WORKFLOWS_FAKE_CONTROL_TOKEN_FILE="${token_file}"
fi
if (( tls )); then
  export WORKFLOWS_FAKE_TLS_CA_FILE="${work}/tls/ca.pem"
fi
# In the background, so that the traps run as soon as a signal arrives.
"${test_binary}" "$@" &
test_pid=$!
wait "${test_pid}"
test_code=$?
test_pid=""

# --- 3. Stop the server; its exit status decides as much as the test's. ---
status=0
if ! kill -0 "${server_pid}" 2>/dev/null; then
  wait "${server_pid}"
  code=$?
  server_pid=""
  echo "${me}: the server exited with status ${code} while the test ran" >&2
  show_log
  status=1
else
  stop_server
  if (( server_code != 0 )); then
    if (( server_code > 128 )); then
      echo "${me}: the server was killed by signal $(( server_code - 128 ))" \
        "after SIGTERM" >&2
    else
      echo "${me}: the server exited with status ${server_code} after" \
        "SIGTERM (want 0)" >&2
    fi
    show_log
    status=1
  fi
fi
if (( test_code != 0 )); then
  echo "${me}: the test failed with status ${test_code}" >&2
  (( status == 0 )) && show_log
  status=${test_code}
fi
exit "${status}"
