#!/bin/bash
# Runs interop_test.py with Debian's python3 (which has python3-grpcio; a
# pyenv python3 on PATH may not) and the generated stubs on PYTHONPATH.
set -euo pipefail
runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
if [[ ! -x /usr/bin/python3 ]] || ! /usr/bin/python3 -c "import grpc" 2>/dev/null; then
  echo "FAIL: /usr/bin/python3 with grpc is required (apt-get install python3-grpcio python3-protobuf)" >&2
  exit 1
fi
export PYTHONPATH="${runfiles}/python"
exec /usr/bin/python3 "${runfiles}/tests/interop/interop_test.py" \
  "${runfiles}/fake_server/workflows_fake_server"
