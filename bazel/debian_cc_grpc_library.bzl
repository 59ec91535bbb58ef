"""gRPC's `cc_grpc_library`, for the Debian-mapped `@com_github_grpc_grpc`.

`workflows_grpc_dependencies()` serves this file as
`@com_github_grpc_grpc//bazel:cc_grpc_library.bzl`, so BUILD files written
for a source-built gRPC work unchanged:

    load("@com_github_grpc_grpc//bazel:cc_grpc_library.bzl", "cc_grpc_library")

    proto_library(name = "greeter_proto", srcs = ["greeter.proto"])
    cc_proto_library(name = "greeter_cc_proto", deps = [":greeter_proto"])
    cc_grpc_library(
        name = "greeter_cc_grpc",
        srcs = [":greeter_proto"],
        grpc_only = True,
        generate_mocks = True,  # also greeter_mock.grpc.pb.h
        deps = [":greeter_cc_proto"],
    )

The signature is gRPC's. Supported: `grpc_only = True` with one
`proto_library` in `srcs` (the form gRPC recommends), and the older form with
one .proto file in `srcs` and other cc_grpc_library targets of the same
package style in `deps`. The proto_library must be in the same package as the
cc_grpc_library and must not use `import_prefix`/`strip_import_prefix`.
`well_known_protos` and `use_external` are accepted and ignored: the
well-known types come with libprotobuf.
"""

def _strip_root(path, root):
    if root in ("", "."):
        return path
    return path[len(root) + 1:]

def _grpc_codegen_impl(ctx):
    proto_info = ctx.attr.srcs[0][ProtoInfo]
    root = proto_info.proto_source_root
    package = ctx.label.package
    suffixes = [".grpc.pb.h", ".grpc.pb.cc"]
    if ctx.attr.generate_mocks:
        suffixes.append("_mock.grpc.pb.h")

    outputs = []
    relative_sources = []
    for src in proto_info.direct_sources:
        relative = _strip_root(src.path, root)
        prefix = package + "/" if package else ""
        if not relative.startswith(prefix):
            fail("%s: cc_grpc_library needs its proto_library's sources in its own " % ctx.label +
                 "package, without import prefixes; %s is imported as %s" % (src.path, relative))
        relative_sources.append(relative)
        stem = relative[len(prefix):-len(".proto")]
        for suffix in suffixes:
            outputs.append(ctx.actions.declare_file(stem + suffix))

    out_root = ctx.bin_dir.path
    if ctx.label.workspace_root:
        out_root += "/" + ctx.label.workspace_root

    args = ctx.actions.args()
    args.add("--plugin=protoc-gen-grpc=" + ctx.executable._plugin.path)
    options = "generate_mock_code=true:" if ctx.attr.generate_mocks else ""
    args.add("--grpc_out=" + options + out_root)
    for path in proto_info.transitive_proto_path.to_list():
        args.add("-I" + path)
    args.add_all(relative_sources)

    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = proto_info.transitive_sources,
        tools = [ctx.executable._plugin],
        outputs = outputs,
        mnemonic = "ProtocGrpcCpp",
        progress_message = "Generating C++ gRPC services for %s" % ctx.label,
    )
    return [DefaultInfo(files = depset(outputs))]

_grpc_codegen = rule(
    implementation = _grpc_codegen_impl,
    attrs = {
        "srcs": attr.label_list(providers = [ProtoInfo], mandatory = True),
        "generate_mocks": attr.bool(default = False),
        "_protoc": attr.label(
            default = Label("@com_google_protobuf//:protoc"),
            executable = True,
            cfg = "exec",
            allow_single_file = True,
        ),
        "_plugin": attr.label(
            default = Label("//src/compiler:grpc_cpp_plugin"),
            executable = True,
            cfg = "exec",
            allow_single_file = True,
        ),
    },
)

def cc_grpc_library(
        name,
        srcs,
        deps,
        proto_only = False,
        well_known_protos = False,
        generate_mocks = False,
        use_external = False,
        grpc_only = False,
        **kwargs):
    """Generates C++ gRPC service code (as gRPC's macro of the same name).

    Args:
      name: name of the cc_library with the generated services.
      srcs: with grpc_only, one proto_library; else one .proto file.
      deps: the cc_proto_library (grpc_only) or other cc_grpc_library
        targets (otherwise) the services need.
      proto_only: only generate messages (not with grpc_only).
      well_known_protos: ignored; the well-known types are in libprotobuf.
      generate_mocks: also generate `*_mock.grpc.pb.h` gMock stubs.
      use_external: ignored.
      grpc_only: `srcs` is a proto_library whose messages are in `deps`.
      **kwargs: passed to every generated target (visibility, testonly, ...).
    """
    _ = (well_known_protos, use_external)
    if len(srcs) != 1:
        fail("cc_grpc_library takes exactly one element in srcs", "srcs")
    if grpc_only and proto_only:
        fail("cc_grpc_library: grpc_only and proto_only cannot both be set")
    extra_deps = []
    proto_targets = srcs
    if not grpc_only:
        proto_target = "_" + name + "_only"
        cc_proto_target = name if proto_only else "_" + name + "_cc_proto"
        proto_deps = []
        for dep in deps:
            package, _, target = dep.rpartition(":")
            proto_deps.append("%s:_%s_only" % (package, target) if package or dep.startswith(":") else "_" + dep + "_only")
        native.proto_library(name = proto_target, srcs = srcs, deps = proto_deps, **kwargs)
        native.cc_proto_library(name = cc_proto_target, deps = [":" + proto_target], **kwargs)
        extra_deps.append(":" + cc_proto_target)
        proto_targets = [":" + proto_target]
    if proto_only:
        return

    codegen = "_" + name + "_grpc_codegen"
    _grpc_codegen(
        name = codegen,
        srcs = proto_targets,
        generate_mocks = generate_mocks,
        **kwargs
    )
    grpc_deps = [str(Label("//:grpc++_codegen_proto"))]
    if generate_mocks:
        grpc_deps.append(str(Label("//:grpc++_test")))
    native.cc_library(
        name = name,
        srcs = [":" + codegen],
        hdrs = [":" + codegen],
        deps = deps + extra_deps + grpc_deps,
        **kwargs
    )
