"""Everything a workspace needs to build workflows_grpc, with no downloads.

In your WORKSPACE, after declaring this repository:

    load("@workflows_grpc//bazel:repositories.bzl", "workflows_grpc_dependencies")
    workflows_grpc_dependencies()

The kit's BUILD files use the gRPC ecosystem's canonical repositories:
`@com_github_grpc_grpc`, `@com_google_protobuf`, `@com_google_absl` and
`@com_google_googletest` (plus `@com_github_google_benchmark` for bench/).
When the workspace defines none of the four, they are defined here, mapped
onto Debian's libraries (bazel/debian_repositories.bzl). When it defines all
four (say it builds gRPC from source), those are used. When it defines some
but not all, this fails naming them: Debian's gRPC linked with a source-built
abseil or protobuf breaks at link or run time.
"""

load(
    ":debian_repositories.bzl",
    "debian_absl_repository",
    "debian_benchmark_repository",
    "debian_googletest_repository",
    "debian_grpc_repository",
    "debian_protobuf_repository",
)
load(":offline_repos.bzl", "offline_bazel_repositories")
load(":system_repository.bzl", "workflows_grpc_system_repository")

# The repositories that must come from one place: all from Debian, or all
# from the workspace.
CANONICAL_REPOSITORIES = [
    "com_github_grpc_grpc",
    "com_google_absl",
    "com_google_googletest",
    "com_google_protobuf",
]

def _check_all_or_none(existing):
    defined = [name for name in CANONICAL_REPOSITORIES if name in existing]
    missing = [name for name in CANONICAL_REPOSITORIES if name not in existing]
    if defined and missing:
        fail(("workflows_grpc_dependencies(): this workspace defines %s but not %s. " +
              "Define all four before calling it (the kit then uses yours), or none " +
              "(the kit then maps all four onto Debian's libraries); mixing Debian's " +
              "gRPC with a source-built abseil or protobuf breaks at link or run time.") %
             (", ".join(defined), ", ".join(missing)))
    return not defined

def workflows_grpc_dependencies():
    """Declares the repositories the kit needs that the workspace lacks."""
    offline_bazel_repositories()
    existing = native.existing_rules()
    if _check_all_or_none(existing):
        debian_absl_repository(name = "com_google_absl")
        debian_protobuf_repository(name = "com_google_protobuf")
        debian_googletest_repository(name = "com_google_googletest")
        debian_grpc_repository(
            name = "com_github_grpc_grpc",
            cc_grpc_library_bzl = Label("//bazel:debian_cc_grpc_library.bzl"),
        )
    if "com_github_google_benchmark" not in existing:
        debian_benchmark_repository(name = "com_github_google_benchmark")
    if "workflows_grpc_system" not in existing:
        workflows_grpc_system_repository(name = "workflows_grpc_system")
