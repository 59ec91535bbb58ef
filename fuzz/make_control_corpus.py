#!/usr/bin/env python3
"""Writes the control_service_fuzzer seed corpus (fuzz/corpus/...).

Each seed is a sequence of operations `selector:u8 length:u16le payload`,
the payload a request serialized with `protoc --encode` (see
control_service_fuzzer.cc). Run from the workspace root:

  python3 fuzz/make_control_corpus.py
"""

import os
import struct
import subprocess

OUT = "fuzz/corpus/control_service_fuzzer"
(LOAD, RESET, SET_HEALTH, GET_JOURNAL, CLEAR_JOURNAL, WAIT, ADVANCE, CHECK,
 GET_JOB, CREATE_JOB, IS_LOCAL_PEER) = range(11)
PROTOS = {
    "workflows.fake.": ("fake_server/control.proto", ["-I.", "-I/usr/include"]),
    "descarteslabs.": ("proto/job.proto", ["-I.", "-I/usr/include"]),
    "grpc.health.": ("grpc/health/v1/health.proto",
                     ["-I/usr/share/grpc-proto", "-I/usr/include"]),
}


def encode(message, text):
    for prefix, (proto, includes) in PROTOS.items():
        if message.startswith(prefix):
            return subprocess.run(
                ["protoc", *includes, "--encode=" + message, proto],
                input=text.encode(), stdout=subprocess.PIPE,
                check=True).stdout
    raise ValueError(message)


def op(selector, payload=b""):
    return struct.pack("<BH", selector, len(payload)) + payload


def scenario(path):
    with open(path) as f:
        return f.read()


def text_field(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace(
        "\n", "\\n") + '"'


SEEDS = {
    "load_flaky_then_calls": [
        op(LOAD, encode("workflows.fake.LoadScenarioRequest",
                        "scenario_text: %s source_name: \"flaky\"" % text_field(
                            scenario("fake_server/scenarios/"
                                     "flaky_unavailable.textproto")))),
        op(GET_JOB, encode("descarteslabs.workflows.GetJobRequest",
                           'id: "j1"')),
        op(WAIT, encode("workflows.fake.WaitForCallsRequest",
                        'method: "GetJob" count: 1 timeout { nanos: 5000000 }')),
        op(GET_JOURNAL, encode("workflows.fake.GetJournalRequest",
                               'method: "GetJob"')),
        op(CLEAR_JOURNAL),
    ],
    "load_merge_slow": [
        op(LOAD, encode("workflows.fake.LoadScenarioRequest",
                        "scenario_text: %s merge: true" % text_field(
                            scenario("fake_server/scenarios/slow.textproto")))),
        op(CHECK, encode("grpc.health.v1.HealthCheckRequest", 'service: ""')),
    ],
    "load_job_progression_advance": [
        op(LOAD, encode("workflows.fake.LoadScenarioRequest",
                        "scenario_text: %s" % text_field(scenario(
                            "fake_server/scenarios/job_fails_oom.textproto")))),
        op(CREATE_JOB, encode("descarteslabs.workflows.CreateJobRequest",
                              'serialized_graft: "{\\"x\\": [\\"int\\", 1]}"')),
        op(ADVANCE, encode("workflows.fake.AdvanceClockRequest",
                           "duration { seconds: 60 }")),
        op(GET_JOURNAL, b""),
    ],
    "load_bad_scenario": [
        op(LOAD, encode("workflows.fake.LoadScenarioRequest",
                        'scenario_text: "rules { method: \\"GetJbo\\" }"')),
        op(LOAD, encode("workflows.fake.LoadScenarioRequest",
                        'scenario_text: "seed { }" merge: true')),
    ],
    "health_flip": [
        op(SET_HEALTH, encode("workflows.fake.SetHealthRequest",
                              'service: "" status: "NOT_SERVING"')),
        op(CHECK, encode("grpc.health.v1.HealthCheckRequest", "")),
        op(SET_HEALTH, encode("workflows.fake.SetHealthRequest",
                              'service: "x" status: "SERVING_MAYBE"')),
        op(RESET),
    ],
    "wait_in_flight_negative": [
        op(WAIT, encode("workflows.fake.WaitForCallsRequest",
                        'method: "descarteslabs.workflows.JobAPI/GetJob" '
                        "count: 2 in_flight: true timeout { nanos: 1000000 }")),
        op(WAIT, encode("workflows.fake.WaitForCallsRequest",
                        'method: "NoSuchMethod" count: 1')),
        op(WAIT, encode("workflows.fake.WaitForCallsRequest",
                        "method: \"GetJob\" timeout { seconds: -1 }")),
    ],
    "advance_negative": [
        op(ADVANCE, encode("workflows.fake.AdvanceClockRequest",
                           "duration { seconds: -5 }")),
        op(ADVANCE, encode("workflows.fake.AdvanceClockRequest",
                           "duration { nanos: 999999999 }")),
    ],
    # Parsing limits: nesting one level over 100, text one byte over the
    # fuzzer's 16 KiB cap; both refused, changing nothing.
    "load_limits": [
        op(LOAD, encode("workflows.fake.LoadScenarioRequest",
                        "scenario_text: %s" % text_field(
                            "rules { method: \"GetJob\" behavior { reply { "
                            "[type.googleapis.com/descarteslabs.workflows.Job]"
                            " { typespec { " + "map { items { key { " * 32 +
                            "} } } " * 32 + "} } } } }"))),
        op(LOAD, encode("workflows.fake.LoadScenarioRequest",
                        "scenario_text: %s" % text_field(
                            "description: \"" + "x" * (16 * 1024) + "\""))),
        op(CHECK, encode("grpc.health.v1.HealthCheckRequest", "")),
    ],
    # AdvanceClock past Duration's range, then to the year 9999's edge, with
    # a job to progress there.
    "advance_to_the_end_of_time": [
        op(CREATE_JOB, encode("descarteslabs.workflows.CreateJobRequest",
                              'serialized_graft: "{}"')),
        op(ADVANCE, encode("workflows.fake.AdvanceClockRequest",
                           "duration { seconds: 9223372036854775807 }")),
        op(ADVANCE, encode("workflows.fake.AdvanceClockRequest",
                           "duration { seconds: 315576000000 }")),
        op(ADVANCE, encode("workflows.fake.AdvanceClockRequest",
                           "duration { seconds: 200000000000 }")),
        op(GET_JOB, encode("descarteslabs.workflows.GetJobRequest",
                           'id: "job-1"')),
    ],
    "peers": [
        op(IS_LOCAL_PEER, b"ipv4:127.0.0.1:5000"),
        op(IS_LOCAL_PEER, b"ipv6:%5B::1%5D:5000"),
        op(IS_LOCAL_PEER, b"ipv6:[::ffff:10.0.0.1]:1"),
        op(IS_LOCAL_PEER, b"unix:/tmp/x"),
    ],
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, ops in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(b"".join(ops))


if __name__ == "__main__":
    main()
