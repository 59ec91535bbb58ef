#!/usr/bin/env bash
# Runs "$@" with TSAN_OPTIONS naming our suppressions file (tools/tsan/tsan.supp).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
supp=""
for candidate in \
    "${here}/env.runfiles/workflows_grpc/tools/tsan/tsan.supp" \
    "${RUNFILES_DIR:-/nonexistent}/workflows_grpc/tools/tsan/tsan.supp" \
    "${here}/tsan.supp"; do
  if [[ -f "${candidate}" ]]; then supp="${candidate}"; break; fi
done
if [[ -z "${supp}" ]]; then
  echo "tools/tsan/env.sh: cannot find tools/tsan/tsan.supp" >&2
  exit 1
fi
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1}:suppressions=${supp}"
exec "$@"
