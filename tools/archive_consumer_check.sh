#!/usr/bin/env bash
# Builds and tests examples/consumer against a release-style tarball of this
# repository: `git archive` of HEAD, consumed through http_archive with a
# file:// URL, its sha256 and strip_prefix, exactly as a user of a release
# would. Prints the bazel test output; exits non-zero on failure.
#
#   bash tools/archive_consumer_check.sh [BEP_JSON_OUT]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bep="${1:-}"
version="$(cat "${root}/VERSION")"
prefix="workflows_grpc-${version}"
# A fixed path, so Bazel reuses one output base across runs instead of
# leaving a new one behind each time.
work="${TMPDIR:-/tmp}/workflows_grpc_archive_consumer"
mkdir -p "${work}"

tarball="${work}/${prefix}.tar.gz"
git -C "${root}" archive --format=tar.gz --prefix="${prefix}/" -o "${tarball}" HEAD
sha256="$(sha256sum "${tarball}" | cut -d' ' -f1)"
echo "archive: ${tarball} sha256=${sha256}"

consumer="${work}/consumer"
rm -rf "${consumer}"
cp -r "${root}/examples/consumer" "${consumer}"
rm -rf "${consumer}"/bazel-*
cat >"${consumer}/WORKSPACE" <<WORKSPACE
workspace(name = "consumer")

load("@bazel_tools//tools/build_defs/repo:http.bzl", "http_archive")

http_archive(
    name = "workflows_grpc",
    sha256 = "${sha256}",
    strip_prefix = "${prefix}",
    urls = ["file://${tarball}"],
)

load("@workflows_grpc//bazel:repositories.bzl", "workflows_grpc_dependencies")

workflows_grpc_dependencies()
WORKSPACE

cd "${consumer}"
# Downloads stay disabled in .bazelrc; the only "download" here is the
# file:// tarball, so allow the downloader for this one command.
args=(test --config=ci --noexperimental_repository_disable_download //...)
[[ -n "${bep}" ]] && args+=(--build_event_json_file="${bep}")
status=0
bazel "${args[@]}" </dev/null || status=$?
bazel shutdown </dev/null
exit "${status}"
