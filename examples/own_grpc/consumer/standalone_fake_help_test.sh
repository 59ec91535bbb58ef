#!/usr/bin/env bash
# The standalone fake starts, links and describes its flags.
set -euo pipefail
out="$("$1" --help 2>&1 || true)"
grep -q -- "--scenario" <<<"${out}" || { echo "no --scenario in --help: ${out}" >&2; exit 1; }
