"""Offline stand-ins for repositories Bazel 4.2.3 would otherwise download.

Bazel appends a WORKSPACE suffix that declares `rules_cc`, `rules_java` and
`remote_coverage_tools` with `http_archive` unless they already exist. Without
network those downloads fail, so we declare them first as tiny local
repositories that forward to the native rules Bazel 4.2.3 has built in.
"""

_RULES_CC_DEFS = """\
\"\"\"Forwards to the native C++ rules built into Bazel 4.2.3.\"\"\"

def cc_binary(**kwargs):
    native.cc_binary(**kwargs)

def cc_import(**kwargs):
    native.cc_import(**kwargs)

def cc_library(**kwargs):
    native.cc_library(**kwargs)

def cc_test(**kwargs):
    native.cc_test(**kwargs)

def cc_proto_library(**kwargs):
    native.cc_proto_library(**kwargs)

def cc_toolchain(**kwargs):
    native.cc_toolchain(**kwargs)

def cc_toolchain_suite(**kwargs):
    native.cc_toolchain_suite(**kwargs)

def objc_library(**kwargs):
    native.objc_library(**kwargs)

def fdo_prefetch_hints(**kwargs):
    native.fdo_prefetch_hints(**kwargs)

def fdo_profile(**kwargs):
    native.fdo_profile(**kwargs)
"""

_RULES_JAVA_DEFS = """\
\"\"\"Forwards to the native Java rules built into Bazel 4.2.3.\"\"\"

def java_binary(**kwargs):
    native.java_binary(**kwargs)

def java_import(**kwargs):
    native.java_import(**kwargs)

def java_library(**kwargs):
    native.java_library(**kwargs)

def java_test(**kwargs):
    native.java_test(**kwargs)

def java_plugin(**kwargs):
    native.java_plugin(**kwargs)

def java_toolchain(**kwargs):
    native.java_toolchain(**kwargs)

def java_runtime(**kwargs):
    native.java_runtime(**kwargs)

def java_proto_library(**kwargs):
    native.java_proto_library(**kwargs)

def java_lite_proto_library(**kwargs):
    native.java_lite_proto_library(**kwargs)
"""

_COVERAGE_SCRIPT = """\
#!/bin/sh
echo "coverage tools are not available offline in this workspace" >&2
exit 1
"""

def _forwarding_rules_repo_impl(repository_ctx):
    repository_ctx.file("BUILD.bazel", "")
    repository_ctx.file(repository_ctx.attr.package + "/BUILD.bazel", "")
    repository_ctx.file(
        repository_ctx.attr.package + "/defs.bzl",
        repository_ctx.attr.defs,
    )

_forwarding_rules_repo = repository_rule(
    implementation = _forwarding_rules_repo_impl,
    attrs = {
        "package": attr.string(mandatory = True),
        "defs": attr.string(mandatory = True),
    },
)

def _coverage_tools_repo_impl(repository_ctx):
    repository_ctx.file("coverage_unavailable.sh", _COVERAGE_SCRIPT, executable = True)
    repository_ctx.file("BUILD.bazel", """\
package(default_visibility = ["//visibility:public"])

sh_binary(
    name = "coverage_report_generator",
    srcs = ["coverage_unavailable.sh"],
)

sh_binary(
    name = "lcov_merger",
    srcs = ["coverage_unavailable.sh"],
)
""")

_coverage_tools_repo = repository_rule(implementation = _coverage_tools_repo_impl)

def offline_bazel_repositories():
    """Declares rules_cc, rules_java and remote_coverage_tools unless present."""
    existing = native.existing_rules()
    if "rules_cc" not in existing:
        _forwarding_rules_repo(name = "rules_cc", package = "cc", defs = _RULES_CC_DEFS)
    if "rules_java" not in existing:
        _forwarding_rules_repo(name = "rules_java", package = "java", defs = _RULES_JAVA_DEFS)
    if "remote_coverage_tools" not in existing:
        _coverage_tools_repo(name = "remote_coverage_tools")
