#!/usr/bin/env bash
# Builds and tests examples/consumer against a release-style tarball of this
# repository: `git archive` of HEAD, consumed through http_archive with its
# sha256 and strip_prefix, exactly as docs/getting_started.md tells a user of
# a release to: downloads stay disabled and the tarball comes from
# --distdir. Then checks the API hygiene a consumer sees: production code
# depending on the testonly kit, or on an internal target, is refused with
# the error the guide shows. Prints the bazel output; exits non-zero on
# failure.
#
#   bash tools/archive_consumer_check.sh [BEP_JSON_OUT]
#
# CONSUMER_DISK_CACHE=DIR shares a --disk_cache with an earlier
# `bazel test` of examples/consumer (same workspace name, same action keys),
# so CI compiles the consumer once. Tests are never taken from that cache.
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

# Downloads are disabled (even file://), so Bazel takes the tarball from
# --distdir (below), which holds a file of the same name and sha256.
http_archive(
    name = "workflows_grpc",
    sha256 = "${sha256}",
    strip_prefix = "${prefix}",
    urls = ["file://${tarball}"],
)

load("@workflows_grpc//bazel:repositories.bzl", "workflows_grpc_dependencies")

workflows_grpc_dependencies()
WORKSPACE

# As the guide says: downloads stay disabled (the consumer's .bazelrc) and
# the release tarball is found by name in a --distdir.
echo "common --distdir=${work}" >>"${consumer}/.bazelrc"

cd "${consumer}"
# Flags shared by the test run and the hygiene builds below, so the builds
# reuse the test run's analysis and cache.
build_args=(--config=ci)
if [[ -n "${CONSUMER_DISK_CACHE:-}" ]]; then
  build_args+=(--disk_cache="${CONSUMER_DISK_CACHE}")
fi
args=(test "${build_args[@]}" //...)
[[ -n "${CONSUMER_DISK_CACHE:-}" ]] && args+=(--nocache_test_results)
[[ -n "${bep}" ]] && args+=(--build_event_json_file="${bep}")
# Exit status: bazel's own (3: tests ran and some failed) unless a hygiene
# check below fails, which is 1.
status=0
bazel "${args[@]}" </dev/null || status=$?

hygiene_failed=0
# expect_refused <package> <BUILD text> <error the guide promises>
expect_refused() {
  local package="$1" build="$2" expected="$3" output
  mkdir -p "${consumer}/${package}"
  printf '%s\n' "${build}" >"${consumer}/${package}/BUILD.bazel"
  if output="$(bazel build "${build_args[@]}" "//${package}:production_code" 2>&1 </dev/null)"; then
    echo "FAIL: //${package}:production_code built; it must be refused" >&2
    hygiene_failed=1
  elif ! grep -q "${expected}" <<<"${output}"; then
    echo "FAIL: //${package}:production_code was refused without" \
         "'${expected}':" >&2
    echo "${output}" >&2
    hygiene_failed=1
  else
    echo "refused as documented: $(grep -m1 "${expected}" <<<"${output}")"
  fi
  rm -rf "${consumer:?}/${package}"
}
expect_refused bad 'cc_library(
    name = "production_code",
    deps = ["@workflows_grpc//testing"],
)' "depends on testonly target '@workflows_grpc//testing:testing'"
expect_refused internal 'cc_library(
    name = "production_code",
    deps = ["@workflows_grpc//fake_server:behavior_runner"],
)' "is not visible from target"

bazel shutdown </dev/null
if [[ ${hygiene_failed} -ne 0 ]]; then exit 1; fi
exit "${status}"
