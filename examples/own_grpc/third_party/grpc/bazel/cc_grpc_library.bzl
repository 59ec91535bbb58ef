"""Stand-in for gRPC's bazel/cc_grpc_library.bzl: same signature, written
independently of the kit's Debian mapping. Supports grpc_only = True."""

def _codegen_impl(ctx):
    info = ctx.attr.srcs[0][ProtoInfo]
    root = info.proto_source_root
    outs = []
    files = []
    for src in info.direct_sources:
        path = src.path if root in ("", ".") else src.path[len(root) + 1:]
        files.append(path)
        prefix = ctx.label.package + "/" if ctx.label.package else ""
        base = path[len(prefix):-len(".proto")]
        outs += [ctx.actions.declare_file(base + s) for s in [".grpc.pb.h", ".grpc.pb.cc"]]
        if ctx.attr.generate_mocks:
            outs.append(ctx.actions.declare_file(base + "_mock.grpc.pb.h"))
    out_dir = ctx.bin_dir.path + ("/" + ctx.label.workspace_root if ctx.label.workspace_root else "")
    ctx.actions.run(
        executable = ctx.executable._protoc,
        tools = [ctx.executable._plugin],
        inputs = info.transitive_sources,
        outputs = outs,
        arguments = ["--plugin=protoc-gen-grpc=" + ctx.executable._plugin.path] +
                    ["--grpc_out=%s%s" % ("generate_mock_code=true:" if ctx.attr.generate_mocks else "", out_dir)] +
                    ["-I" + p for p in info.transitive_proto_path.to_list()] + files,
    )
    return [DefaultInfo(files = depset(outs))]

_codegen = rule(
    implementation = _codegen_impl,
    attrs = {
        "srcs": attr.label_list(providers = [ProtoInfo]),
        "generate_mocks": attr.bool(),
        "_protoc": attr.label(default = "@com_google_protobuf//:protoc", executable = True, cfg = "exec"),
        "_plugin": attr.label(default = "//src/compiler:grpc_cpp_plugin", executable = True, cfg = "exec"),
    },
)

def cc_grpc_library(name, srcs, deps, proto_only = False, well_known_protos = False, generate_mocks = False, use_external = False, grpc_only = False, **kwargs):
    if not grpc_only or proto_only:
        fail("this stand-in supports grpc_only = True only")
    _codegen(name = "_" + name + "_codegen", srcs = srcs, generate_mocks = generate_mocks, **kwargs)
    native.cc_library(
        name = name,
        srcs = [":_" + name + "_codegen"],
        hdrs = [":_" + name + "_codegen"],
        deps = deps + ["@com_github_grpc_grpc//:grpc++_codegen_proto"] +
               (["@com_github_grpc_grpc//:grpc++_test"] if generate_mocks else []),
        **kwargs
    )
