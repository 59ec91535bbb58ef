#!/usr/bin/env bash
# Installs every Debian package this repository needs. Idempotent: when all
# packages are present it only checks and exits. Run as root.
#
#   sudo bash tools/setup.sh
set -euo pipefail

# Each line: <package> <why it is needed>.
readonly PACKAGES_WITH_REASONS="
bazel-bootstrap            Bazel 4.2.3, the build system
pkg-config                 locating system libraries from Bazel
g++                        the C++ compiler
libgrpc++-dev              gRPC C++ (client, server, reflection)
libgrpc-dev                gRPC core
protobuf-compiler-grpc     grpc_cpp_plugin and grpc_python_plugin
libprotobuf-dev            protobuf C++ runtime
protobuf-compiler          protoc
libprotoc-dev              libprotoc, for the kit's protoc plugins
libabsl-dev                abseil (status, flags, time, synchronization)
libgtest-dev               GoogleTest
libgmock-dev               GoogleMock
libbenchmark-dev           Google Benchmark (bench/)
valgrind                   callgrind instruction counts (bench/instructions.sh)
libssl-dev                 OpenSSL, for minting test certificates
openssl                    OpenSSL command line
grpc-proto                 official grpc/health/v1/health.proto
python3                    interop test runner
python3-grpcio             independent gRPC implementation for interop tests
python3-protobuf           protobuf runtime for the interop tests
python3-pytest             the Python harness's tests
clang-14                   sanitizer and fuzzer builds
libclang-rt-14-dev         sanitizer and libFuzzer runtimes for clang-14
"

packages=()
while read -r pkg _; do
  [[ -n "${pkg}" ]] && packages+=("${pkg}")
done <<<"${PACKAGES_WITH_REASONS}"

reason_for() {
  grep -E "^$1 " <<<"${PACKAGES_WITH_REASONS}" | sed -E 's/^[^ ]+ +//'
}

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)
  [[ "${status}" == "install ok installed" ]] || missing+=("${pkg}")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup.sh: all ${#packages[@]} packages already installed."
  exit 0
fi

if [[ "$(id -u)" -ne 0 ]]; then
  echo "setup.sh: must run as root to install: ${missing[*]}" >&2
  for pkg in "${missing[@]}"; do
    echo "  ${pkg}: $(reason_for "${pkg}")" >&2
  done
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "setup.sh: installing ${missing[*]}"
apt-get update -qq </dev/null

# Check availability first so a missing package is named, not buried in apt output.
for pkg in "${missing[@]}"; do
  if ! apt-cache show "${pkg}" >/dev/null 2>&1; then
    echo "setup.sh: Debian package '${pkg}' is not available from the configured" \
         "apt sources (needed for: $(reason_for "${pkg}"))." >&2
    exit 1
  fi
done

if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null; then
  echo "setup.sh: apt-get install failed for: ${missing[*]}" >&2
  exit 1
fi
echo "setup.sh: done."
