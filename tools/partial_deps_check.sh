#!/usr/bin/env bash
# Checks that workflows_grpc_dependencies() refuses a workspace that defines
# some of the canonical repositories (com_github_grpc_grpc, com_google_absl,
# com_google_googletest, com_google_protobuf) but not all, naming both sets.
# Exits non-zero if the workspace loads or the message is not the one
# bazel/repositories.bzl documents.
#
#   bash tools/partial_deps_check.sh
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# A fixed path, so Bazel reuses one output base across runs.
work="${TMPDIR:-/tmp}/workflows_grpc_partial_deps"
rm -rf "${work}"
mkdir -p "${work}"
cp "${root}/.bazelrc" "${work}/.bazelrc"
cat >"${work}/WORKSPACE" <<WORKSPACE
workspace(name = "partial")

local_repository(
    name = "com_google_absl",
    path = "${root}/examples/own_grpc/third_party/absl",
)

local_repository(
    name = "workflows_grpc",
    path = "${root}",
)

load("@workflows_grpc//bazel:repositories.bzl", "workflows_grpc_dependencies")

workflows_grpc_dependencies()
WORKSPACE
touch "${work}/BUILD.bazel"

expected="this workspace defines com_google_absl but not com_github_grpc_grpc, com_google_googletest, com_google_protobuf"
if out="$(cd "${work}" && bazel query @workflows_grpc//client:all </dev/null 2>&1)"; then
  echo "FAIL: a workspace defining only com_google_absl loaded:" >&2
  echo "${out}" >&2
  exit 1
fi
if ! grep -qF "${expected}" <<<"${out}"; then
  echo "FAIL: the error does not say: ${expected}" >&2
  echo "${out}" >&2
  exit 1
fi
(cd "${work}" && bazel shutdown </dev/null >/dev/null 2>&1)
echo "PASS: partial canonical repositories are refused: ${expected}"
