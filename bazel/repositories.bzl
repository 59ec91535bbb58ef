"""Everything a workspace needs to build workflows_grpc, with no downloads.

In your WORKSPACE, after declaring this repository:

    load("@workflows_grpc//bazel:repositories.bzl", "workflows_grpc_dependencies")
    workflows_grpc_dependencies()

Each repository is declared only if the workspace has not declared it already.
"""

load(":offline_repos.bzl", "offline_bazel_repositories")
load(":system_repository.bzl", "workflows_grpc_system_repository")

def workflows_grpc_dependencies():
    """Declares the offline Bazel rule stubs and Debian system libraries."""
    offline_bazel_repositories()
    if "workflows_grpc_system" not in native.existing_rules():
        # Resolves to this repository under whatever name the consumer gave it.
        this_repo = Label("//bazel:cc_grpc_library.bzl").workspace_name
        workflows_grpc_system_repository(
            name = "workflows_grpc_system",
            cc_grpc_library_bzl = "@%s//bazel:cc_grpc_library.bzl" % this_repo,
        )
