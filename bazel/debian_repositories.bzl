"""The gRPC ecosystem's canonical repositories, mapped onto Debian's libraries.

Defines `com_github_grpc_grpc`, `com_google_protobuf`, `com_google_absl`,
`com_google_googletest` and `com_github_google_benchmark` with the targets the
upstream repositories use (`@com_github_grpc_grpc//:grpc++`,
`@com_google_absl//absl/strings`, `@com_google_googletest//:gtest`, ...).
Each library is an empty `cc_library` whose `linkopts` come from `pkg-config`;
headers are found in /usr/include by the default toolchain. Nothing is built
from source and nothing is downloaded. A missing library or tool fails the
build naming the Debian package that provides it.

Bazel 4.2.3's native `proto_library` and `cc_proto_library` use
`@com_google_protobuf//:protoc` and `@com_google_protobuf//:cc_toolchain`, so
those are here too, as are `proto_library` targets for the well-known types
(`@com_google_protobuf//:timestamp_proto`, ...) and gRPC's
`@com_github_grpc_grpc//bazel:cc_grpc_library.bzl` with gRPC's signature.
"""

SETUP_HINT = "Install it with: bash tools/setup.sh (as root, from the workflows_grpc repository)"

# Upstream abseil target -> Debian pkg-config module. The package's default
# target (`//absl/time` = `//absl/time:time`) is listed under its own name.
_ABSL_TARGETS = {
    "absl/algorithm:algorithm": "absl_algorithm",
    "absl/algorithm:container": "absl_algorithm_container",
    "absl/base:base": "absl_base",
    "absl/base:config": "absl_config",
    "absl/base:core_headers": "absl_core_headers",
    "absl/base:dynamic_annotations": "absl_dynamic_annotations",
    "absl/base:log_severity": "absl_log_severity",
    "absl/cleanup:cleanup": "absl_cleanup",
    "absl/container:btree": "absl_btree",
    "absl/container:fixed_array": "absl_fixed_array",
    "absl/container:flat_hash_map": "absl_flat_hash_map",
    "absl/container:flat_hash_set": "absl_flat_hash_set",
    "absl/container:inlined_vector": "absl_inlined_vector",
    "absl/container:node_hash_map": "absl_node_hash_map",
    "absl/container:node_hash_set": "absl_node_hash_set",
    "absl/debugging:failure_signal_handler": "absl_failure_signal_handler",
    "absl/debugging:leak_check": "absl_leak_check",
    "absl/debugging:stacktrace": "absl_stacktrace",
    "absl/debugging:symbolize": "absl_symbolize",
    "absl/flags:commandlineflag": "absl_flags_commandlineflag",
    "absl/flags:config": "absl_flags_config",
    "absl/flags:flag": "absl_flags",
    "absl/flags:marshalling": "absl_flags_marshalling",
    "absl/flags:parse": "absl_flags_parse",
    "absl/flags:reflection": "absl_flags_reflection",
    "absl/flags:usage": "absl_flags_usage",
    "absl/functional:any_invocable": "absl_any_invocable",
    "absl/functional:bind_front": "absl_bind_front",
    "absl/functional:function_ref": "absl_function_ref",
    "absl/hash:hash": "absl_hash",
    "absl/memory:memory": "absl_memory",
    "absl/meta:type_traits": "absl_type_traits",
    "absl/numeric:bits": "absl_bits",
    "absl/numeric:int128": "absl_int128",
    "absl/random:bit_gen_ref": "absl_random_bit_gen_ref",
    "absl/random:distributions": "absl_random_distributions",
    "absl/random:random": "absl_random_random",
    "absl/random:seed_sequences": "absl_random_seed_sequences",
    "absl/status:status": "absl_status",
    "absl/status:statusor": "absl_statusor",
    "absl/strings:cord": "absl_cord",
    "absl/strings:str_format": "absl_str_format",
    "absl/strings:strings": "absl_strings",
    "absl/synchronization:synchronization": "absl_synchronization",
    "absl/time:time": "absl_time",
    "absl/types:any": "absl_any",
    "absl/types:optional": "absl_optional",
    "absl/types:span": "absl_span",
    "absl/types:variant": "absl_variant",
    "absl/utility:utility": "absl_utility",
}

# Well-known types shipped by libprotobuf-dev in /usr/include/google/protobuf.
_WELL_KNOWN_PROTOS = {
    "any": [],
    "api": ["source_context", "type"],
    "compiler_plugin": ["descriptor"],
    "descriptor": [],
    "duration": [],
    "empty": [],
    "field_mask": [],
    "source_context": [],
    "struct": [],
    "timestamp": [],
    "type": ["any", "source_context"],
    "wrappers": [],
}

def fail_missing(what, package):
    fail("workflows_grpc: %s not found. It comes from the Debian package '%s'. %s" %
         (what, package, SETUP_HINT))

def _pkg_config(repository_ctx, modules, package):
    pkg_config = repository_ctx.which("pkg-config")
    if not pkg_config:
        fail_missing("pkg-config", "pkg-config")
    result = repository_ctx.execute([pkg_config, "--libs"] + modules)
    if result.return_code != 0:
        fail_missing("pkg-config module(s) %s (%s)" % (
            ", ".join(modules),
            result.stderr.strip(),
        ), package)
    return [flag for flag in result.stdout.strip().split(" ") if flag]

def _library(name, linkopts, deps = []):
    return "cc_library(\n    name = %r,\n    linkopts = %r,\n    deps = %r,\n)\n" % (
        name,
        linkopts,
        deps,
    )

def _tool(repository_ctx, binary, package, dest):
    path = repository_ctx.which(binary)
    if not path:
        fail_missing("the program '%s'" % binary, package)
    repository_ctx.symlink(path, dest)

def _header(repository_ctx, what):
    return "# %s, mapped onto Debian's libraries by workflows_grpc. Generated; do not edit.\n" % what

def _absl_impl(repository_ctx):
    packages = {}
    for target, module in _ABSL_TARGETS.items():
        package, name = target.split(":")
        packages.setdefault(package, []).append(
            _library(name, _pkg_config(repository_ctx, [module], "libabsl-dev")),
        )
    repository_ctx.file("BUILD.bazel", _header(repository_ctx, "abseil"))
    for package, rules in packages.items():
        repository_ctx.file(
            package + "/BUILD.bazel",
            _header(repository_ctx, "abseil") +
            'package(default_visibility = ["//visibility:public"])\n\n' +
            "\n".join(rules),
        )

debian_absl_repository = repository_rule(
    implementation = _absl_impl,
    local = True,
    environ = ["PATH", "PKG_CONFIG_PATH"],
)

def _protobuf_impl(repository_ctx):
    _tool(repository_ctx, "protoc", "protobuf-compiler", "protoc")
    build = [
        _header(repository_ctx, "protobuf"),
        'package(default_visibility = ["//visibility:public"])\n',
        'exports_files(["protoc"])\n',
        _library("protobuf", _pkg_config(repository_ctx, ["protobuf"], "libprotobuf-dev")),
        _library("protobuf_headers", []),
        _library("protoc_lib", _pkg_config(repository_ctx, ["protobuf"], "libprotobuf-dev") + ["-lprotoc"], [":protobuf"]),
    ]
    for name, deps in _WELL_KNOWN_PROTOS.items():
        file = "compiler/plugin" if name == "compiler_plugin" else name
        source = "/usr/include/google/protobuf/%s.proto" % file
        if not repository_ctx.path(source).exists:
            fail_missing(source, "libprotobuf-dev")
        repository_ctx.symlink(source, "google/protobuf/%s.proto" % file)
        build.append("proto_library(\n    name = %r,\n    srcs = [%r],\n    deps = %r,\n)\n" % (
            name + "_proto",
            "google/protobuf/%s.proto" % file,
            [":%s_proto" % d for d in deps],
        ))
    build.append("""\
filegroup(
    name = "well_known_protos",
    srcs = glob(["google/protobuf/**/*.proto"]),
)

# Native cc_proto_library uses this. The well-known types' C++ code is in
# libprotobuf itself, so they are not generated again.
proto_lang_toolchain(
    name = "cc_toolchain",
    blacklisted_protos = [%s],
    command_line = "--cpp_out=$(OUT)",
    runtime = ":protobuf",
)
""" % ", ".join(['":%s_proto"' % n for n in _WELL_KNOWN_PROTOS]))
    repository_ctx.file("BUILD.bazel", "\n".join(build))

debian_protobuf_repository = repository_rule(
    implementation = _protobuf_impl,
    local = True,
    environ = ["PATH", "PKG_CONFIG_PATH"],
)

def _grpc_impl(repository_ctx):
    package = "libgrpc++-dev"
    grpcpp = _pkg_config(repository_ctx, ["grpc++"], package)
    repository_ctx.file("BUILD.bazel", "\n".join([
        _header(repository_ctx, "gRPC"),
        'package(default_visibility = ["//visibility:public"])\n',
        _library("gpr", _pkg_config(repository_ctx, ["gpr"], "libgrpc-dev")),
        _library("grpc", _pkg_config(repository_ctx, ["grpc"], "libgrpc-dev")),
        _library("grpc++", grpcpp),
        _library("grpc++_reflection", grpcpp + ["-lgrpc++_reflection"]),
        _library("grpcpp_reflection", [], [":grpc++_reflection"]),
        _library("grpc++_codegen_proto", [], [":grpc++", "@com_google_protobuf//:protobuf"]),
        # What gRPC's generated *_mock.grpc.pb.h files need.
        _library("grpc++_test", [], [":grpc++", "@com_google_googletest//:gtest"]),
    ]))
    repository_ctx.file(
        "src/compiler/BUILD.bazel",
        _header(repository_ctx, "gRPC's protoc plugins") +
        'package(default_visibility = ["//visibility:public"])\n\n' +
        'exports_files(["grpc_cpp_plugin", "grpc_python_plugin"])\n',
    )
    for plugin in ["grpc_cpp_plugin", "grpc_python_plugin"]:
        _tool(repository_ctx, plugin, "protobuf-compiler-grpc", "src/compiler/" + plugin)
    repository_ctx.file("bazel/BUILD.bazel", "")
    repository_ctx.symlink(repository_ctx.attr.cc_grpc_library_bzl, "bazel/cc_grpc_library.bzl")

debian_grpc_repository = repository_rule(
    implementation = _grpc_impl,
    attrs = {"cc_grpc_library_bzl": attr.label(mandatory = True, allow_single_file = True)},
    local = True,
    environ = ["PATH", "PKG_CONFIG_PATH"],
)

def _googletest_impl(repository_ctx):
    package = "libgmock-dev"
    repository_ctx.file("BUILD.bazel", "\n".join([
        _header(repository_ctx, "GoogleTest"),
        'package(default_visibility = ["//visibility:public"])\n',
        # Upstream's :gtest includes gMock, and :gtest_main is gmock_main.cc.
        _library("gtest", _pkg_config(repository_ctx, ["gmock", "gtest"], package)),
        _library("gtest_main", _pkg_config(repository_ctx, ["gmock_main", "gmock", "gtest"], package)),
    ]))

debian_googletest_repository = repository_rule(
    implementation = _googletest_impl,
    local = True,
    environ = ["PATH", "PKG_CONFIG_PATH"],
)

def _benchmark_impl(repository_ctx):
    package = "libbenchmark-dev"
    repository_ctx.file("BUILD.bazel", "\n".join([
        _header(repository_ctx, "Google Benchmark"),
        'package(default_visibility = ["//visibility:public"])\n',
        _library("benchmark", _pkg_config(repository_ctx, ["benchmark"], package)),
    ]))

debian_benchmark_repository = repository_rule(
    implementation = _benchmark_impl,
    local = True,
    environ = ["PATH", "PKG_CONFIG_PATH"],
)
