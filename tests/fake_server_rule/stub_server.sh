#!/usr/bin/env bash
# A stand-in for workflows_fake_server in launcher_test.sh: takes the same
# --port_file flag and misbehaves as $STUB_SERVER_MODE says. It waits on a
# FIFO with bash's own `read`, so it has no child process to leave behind.
#   early_exit    prints an error and exits 3 before serving
#   exit1_on_term serves (writes port 4242), exits 1 on SIGTERM
#   ignore_term   serves, ignores SIGTERM (the launcher must SIGKILL it)
#   no_port       never writes the port file
#   clean         serves, exits 0 on SIGTERM
# $STUB_SERVER_DIR/term is written when SIGTERM arrives (not in ignore_term),
# and "stopped" written to the FIFO $STUB_SERVER_DIR/stopped if it exists.
set -uo pipefail
port_file=""
for arg in "$@"; do
  case "${arg}" in --port_file=*) port_file="${arg#*=}" ;; esac
done
echo "stub server: mode ${STUB_SERVER_MODE}, args: $*"
on_term() {
  echo "got TERM" >"${STUB_SERVER_DIR}/term"
  if [[ -p "${STUB_SERVER_DIR}/stopped" ]]; then
    echo stopped >"${STUB_SERVER_DIR}/stopped"
  fi
  exit "$1"
}
case "${STUB_SERVER_MODE}" in
  early_exit) echo "stub server: cannot bind (scripted)" >&2; exit 3 ;;
  exit1_on_term) trap 'on_term 1' TERM ;;
  ignore_term) trap '' TERM ;;
  clean | no_port) trap 'on_term 0' TERM ;;
  *) echo "stub server: unknown mode '${STUB_SERVER_MODE}'" >&2; exit 99 ;;
esac
if [[ "${STUB_SERVER_MODE}" != no_port ]]; then
  echo 4242 >"${port_file}.tmp" && mv "${port_file}.tmp" "${port_file}"
fi
fifo="$(mktemp -u "${STUB_SERVER_DIR}/wait.XXXXXX")"
mkfifo "${fifo}"
exec 3<>"${fifo}"
while true; do read -r -u 3 _; done
