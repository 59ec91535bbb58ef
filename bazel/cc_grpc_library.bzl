"""Deprecated: the kit's old `cc_grpc_library` (takes .proto files).

It shadows gRPC's macro of the same name with a different signature. Use the
standard targets instead, which work with Debian's gRPC through
`workflows_grpc_dependencies()` and with a source-built gRPC alike:

    load("@com_github_grpc_grpc//bazel:cc_grpc_library.bzl", "cc_grpc_library")

    proto_library(name = "greeter_proto", srcs = ["greeter.proto"])
    cc_proto_library(name = "greeter_cc_proto", deps = [":greeter_proto"])
    cc_grpc_library(
        name = "greeter_cc_grpc",
        srcs = [":greeter_proto"],
        generate_mocks = True,
        grpc_only = True,
        deps = [":greeter_cc_proto"],
    )

This file stays for one release and is then removed. What it did:

Runs Debian's `protoc` and `grpc_cpp_plugin` (found by
`workflows_grpc_dependencies()`), so nothing is downloaded. Usable from any
workspace that called that macro:

    load("@workflows_grpc//bazel:cc_grpc_library.bzl", "cc_grpc_library")

    cc_grpc_library(
        name = "greeter_cc_grpc",
        srcs = ["greeter.proto"],
        deps = ["@workflows_grpc//proto:workflows_cc_grpc"],  # optional imports
    )

For `foo.proto` it generates `foo.pb.h`, `foo.grpc.pb.h` and, with
`generate_mocks = True` (the default), `foo_mock.grpc.pb.h` containing
`MockFooStub` classes for client-side gMock tests. Include them by their path
from the workspace root, e.g. `#include "pkg/foo.grpc.pb.h"`.
"""

_ProtoSourcesInfo = provider(
    doc = "Proto sources and the protoc include roots needed to import them.",
    fields = {
        "srcs": "depset of .proto Files, transitive",
        "roots": "depset of include-root strings, transitive",
    },
)


def _include_root(label):
    # Files of an external repository live under external/<name> in the
    # execroot; the main repository's files live at the execroot itself.
    return label.workspace_root if label.workspace_root else "."

def _strip_root(path, root):
    if root == ".":
        return path
    return path[len(root) + 1:]

# deps may be this rule's own targets or, since the kit's protos became
# proto_library targets, a proto_library.
def _dep_sources(dep):
    if _ProtoSourcesInfo in dep:
        return dep[_ProtoSourcesInfo].srcs
    return dep[ProtoInfo].transitive_sources

def _dep_roots(dep):
    if _ProtoSourcesInfo in dep:
        return dep[_ProtoSourcesInfo].roots
    return dep[ProtoInfo].transitive_proto_path

def _cc_grpc_codegen_impl(ctx):
    root = _include_root(ctx.label)
    transitive_srcs = depset(
        ctx.files.srcs,
        transitive = [_dep_sources(d) for d in ctx.attr.deps],
    )
    roots = depset([root], transitive = [_dep_roots(d) for d in ctx.attr.deps])

    suffixes = [".pb.h", ".pb.cc"]
    if ctx.attr.grpc:
        suffixes += [".grpc.pb.h", ".grpc.pb.cc"]
        if ctx.attr.generate_mocks:
            suffixes.append("_mock.grpc.pb.h")

    outputs = []
    for src in ctx.files.srcs:
        if src.owner.workspace_root != ctx.label.workspace_root:
            fail("%s: proto sources must be in the same repository as the rule" % src)
        stem = src.basename[:-len(".proto")]
        for suffix in suffixes:
            outputs.append(ctx.actions.declare_file(stem + suffix, sibling = src))

    out_root = ctx.bin_dir.path
    if root != ".":
        out_root += "/" + root

    args = ctx.actions.args()
    for r in roots.to_list():
        args.add("-I" + r)
    args.add("-I/usr/include")  # Well-known types from libprotobuf-dev.
    args.add("--cpp_out=" + out_root)
    tools = [ctx.executable._protoc]
    if ctx.attr.grpc:
        args.add("--plugin=protoc-gen-grpc=" + ctx.executable._grpc_plugin.path)
        grpc_options = "generate_mock_code=true:" if ctx.attr.generate_mocks else ""
        args.add("--grpc_out=" + grpc_options + out_root)
        tools.append(ctx.executable._grpc_plugin)
    for src in ctx.files.srcs:
        args.add(_strip_root(src.path, root))

    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = transitive_srcs,
        tools = tools,
        outputs = outputs,
        mnemonic = "ProtocCcGrpc",
        progress_message = "Generating C++ gRPC code for %s" % ctx.label,
    )

    headers = [f for f in outputs if f.path.endswith(".h")]
    sources = [f for f in outputs if f.path.endswith(".cc")]
    return [
        DefaultInfo(files = depset(outputs)),
        OutputGroupInfo(headers = depset(headers), sources = depset(sources)),
        _ProtoSourcesInfo(srcs = transitive_srcs, roots = roots),
    ]

_cc_grpc_codegen = rule(
    implementation = _cc_grpc_codegen_impl,
    attrs = {
        "srcs": attr.label_list(allow_files = [".proto"], mandatory = True),
        "deps": attr.label_list(providers = [[_ProtoSourcesInfo], [ProtoInfo]]),
        "grpc": attr.bool(default = True),
        "generate_mocks": attr.bool(default = True),
        "_protoc": attr.label(
            default = Label("@com_google_protobuf//:protoc"),
            executable = True,
            cfg = "exec",
            allow_single_file = True,
        ),
        "_grpc_plugin": attr.label(
            default = Label("@com_github_grpc_grpc//src/compiler:grpc_cpp_plugin"),
            executable = True,
            cfg = "exec",
            allow_single_file = True,
        ),
    },
)

def _codegen_label(dep):
    """Maps a cc_grpc_library label to the label of its code generation target."""
    if ":" in dep:
        return dep + "_codegen"
    return dep + ":" + dep.split("/")[-1] + "_codegen"

def cc_grpc_library(
        name,
        srcs,
        deps = [],
        grpc = True,
        generate_mocks = True,
        visibility = None,
        testonly = False,
        **kwargs):
    """Generates and compiles C++ code for `srcs`.

    Args:
      name: name of the resulting cc_library.
      srcs: .proto files in this package.
      deps: other cc_grpc_library targets whose protos `srcs` import.
      grpc: also run grpc_cpp_plugin (service stubs).
      generate_mocks: also emit `*_mock.grpc.pb.h` gMock client stubs.
      visibility: visibility of the cc_library.
      testonly: passed through to every generated target.
      **kwargs: passed to the cc_library.
    """
    codegen = name + "_codegen"
    _cc_grpc_codegen(
        name = codegen,
        srcs = srcs,
        deps = [_codegen_label(d) for d in deps],
        grpc = grpc,
        generate_mocks = generate_mocks,
        testonly = testonly,
        visibility = visibility,
    )
    native.filegroup(
        name = name + "_headers",
        srcs = [":" + codegen],
        output_group = "headers",
        testonly = testonly,
    )
    native.filegroup(
        name = name + "_sources",
        srcs = [":" + codegen],
        output_group = "sources",
        testonly = testonly,
    )
    system_deps = [
        Label("@com_google_protobuf//:protobuf"),
    ]
    if grpc:
        system_deps.append(Label("@com_github_grpc_grpc//:grpc++"))
    native.cc_library(
        name = name,
        srcs = [":" + name + "_sources"],
        hdrs = [":" + name + "_headers"],
        deps = deps + [str(d) for d in system_deps],
        visibility = visibility,
        testonly = testonly,
        **kwargs
    )
