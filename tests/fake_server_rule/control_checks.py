"""A Python test program for workflows_fake_server_test (see BUILD.bazel):
reaches the fake the rule started through FakeControl.from_environment(),
with the control token and CA the rule passed, and scripts it.

Usage: control_checks.py (run by the rule, which sets WORKFLOWS_FAKE_*)
"""

import os
import sys

import grpc

import health_pb2
import health_pb2_grpc
from workflows_fake import FakeControl

RPC_TIMEOUT_S = 10.0


def main():
    with open(os.environ["WORKFLOWS_FAKE_TLS_CA_FILE"], "rb") as f:
        credentials = grpc.ssl_channel_credentials(f.read())
    address = os.environ["WORKFLOWS_FAKE_ADDRESS"]
    with FakeControl.from_environment() as control, \
            grpc.secure_channel(address, credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def status():
            return health.Check(health_pb2.HealthCheckRequest(),
                                timeout=RPC_TIMEOUT_S).status

        if status() != health_pb2.HealthCheckResponse.SERVING:
            return "FAIL: a fresh fake is not SERVING"
        control.set_health("NOT_SERVING")  # needs the rule's token
        if status() != health_pb2.HealthCheckResponse.NOT_SERVING:
            return "FAIL: SetHealth(NOT_SERVING) not seen by Check"
        control.wait_for_calls("Check", 2)
        if control.count_calls("Check") != 2:
            return "FAIL: the journal does not have the 2 Check calls"
    # Without the token the control service refuses.
    with FakeControl(os.environ["WORKFLOWS_FAKE_CONTROL_ADDRESS"],
                     channel_credentials=credentials) as no_token:
        try:
            no_token.set_health("SERVING")
            return "FAIL: the control service accepted a call without token"
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAUTHENTICATED:
                return "FAIL: want UNAUTHENTICATED, got %s" % e.code()
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
