"""workflows_fuzzer: one fuzz target as a libFuzzer binary and a regression test."""

def workflows_fuzzer(name, srcs, deps, corpus):
    """Declares the targets of one fuzz target.

    - `<name>_lib`: the LLVMFuzzerTestOneInput implementation.
    - `<name>`: the libFuzzer binary (tags = ["manual"]); build it only with
      `--config=fuzz` (clang-14), see tools/run_fuzzers.sh.
    - `<name>_regression_test`: runs every file of `corpus` once through the
      target under the normal build, with fuzz/regression_main.cc as main.

    Args:
      name: the fuzz target's name, e.g. "scenario_fuzzer".
      srcs: sources defining LLVMFuzzerTestOneInput.
      deps: what they need.
      corpus: the seed corpus directory, relative to this package.
    """
    native.cc_library(
        name = name + "_lib",
        srcs = srcs,
        deps = deps,
        alwayslink = True,
    )

    # libFuzzer provides main(); the sanitizers come from --config=fuzz.
    native.cc_binary(
        name = name,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual"],
        deps = [":" + name + "_lib"],
    )

    native.cc_test(
        name = name + "_regression_test",
        size = "small",
        srcs = ["regression_main.cc"],
        args = ["%s/%s" % (native.package_name(), corpus)],
        data = native.glob([corpus + "/**"]),
        deps = [":" + name + "_lib"],
    )
