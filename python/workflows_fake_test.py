"""Tests of the workflows_fake harness (FakeServer, FakeControl, the pytest
fixture) against the real standalone binary, with Debian's pytest and
grpcio.

Run through Bazel: bazel test //python:workflows_fake_test
Usage: workflows_fake_test.py <workflows_fake_server> [pytest args...]
(the ready-made scenarios are found beside it, in scenarios/)
"""

import os
import signal
import sys

import grpc
import pytest

import health_pb2
import health_pb2_grpc
from proto import workflow_pb2
from proto import workflow_pb2_grpc
from workflows_fake import FakeControl
from workflows_fake import FakeServer
from workflows_fake import FakeServerError
from workflows_fake import SESSION_METADATA_KEY

HEALTHY = os.environ.get("WORKFLOWS_FAKE_TEST_HEALTHY_SCENARIO", "")
RPC_TIMEOUT_S = 10.0
GET_WORKFLOW = "/descarteslabs.workflows.WorkflowAPI/GetWorkflow"

BROKEN_RULE = """
rules {
  method: "GetWorkflow"
  name: "broken workflow"
  match { request_textproto: "id: 'ci@example.com:broken'" }
  behavior {
    trailing_metadata { key: "x-reason" value: "quota" }
    fail { code: "FAILED_PRECONDITION" message: "workflow quota exhausted" }
  }
}
"""


def workflows(server):
    channel = grpc.insecure_channel(server.address)
    return channel, workflow_pb2_grpc.WorkflowAPIStub(channel)


def get_workflow(stub, workflow_id, metadata=()):
    return stub.GetWorkflow(workflow_pb2.GetWorkflowRequest(id=workflow_id),
                            timeout=RPC_TIMEOUT_S, metadata=metadata)


def health(server, service=""):
    with grpc.insecure_channel(server.address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service),
            timeout=RPC_TIMEOUT_S).status


@pytest.mark.workflows_fake(scenarios=[HEALTHY])
def test_fixture_serves_the_scenario_file(workflows_fake):
    channel, stub = workflows(workflows_fake)
    with channel:
        workflow = get_workflow(stub, "ci@example.com:ndvi")
    assert workflow.title == "NDVI"
    assert workflows_fake.address == "127.0.0.1:%d" % workflows_fake.port


def test_load_scenario_then_scripted_failure_reaches_grpc_client(
        workflows_fake):
    assert workflows_fake.control.load_scenario(
        BROKEN_RULE, source_name="broken.textproto") == 1
    channel, stub = workflows(workflows_fake)
    with channel:
        with pytest.raises(grpc.RpcError) as failure:
            get_workflow(stub, "ci@example.com:broken")
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert failure.value.details() == "workflow quota exhausted"
    assert ("x-reason", "quota") in failure.value.trailing_metadata()


def test_bad_scenario_is_invalid_argument_with_its_line(workflows_fake):
    with pytest.raises(grpc.RpcError) as failure:
        workflows_fake.control.load_scenario("rules {\n  nonsense: 1\n}\n",
                                             source_name="bad.textproto")
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "bad.textproto:2" in failure.value.details()


def test_journal_counts_calls_across_pages(workflows_fake):
    control = workflows_fake.control
    channel, stub = workflows(workflows_fake)
    with channel:
        for _ in range(3):
            with pytest.raises(grpc.RpcError):
                get_workflow(stub, "ci@example.com:missing")
    control.wait_for_calls("GetWorkflow", 3)
    assert control.count_calls("GetWorkflow") == 3
    first = control.get_journal_page("GetWorkflow", page_size=2)
    assert len(first.journal.calls) == 2
    assert first.journal.more_calls == 1
    assert first.next_page_token
    calls = control.get_journal("GetWorkflow", page_size=1)
    assert [c.method for c in calls] == [GET_WORKFLOW] * 3
    assert all(c.status_code == "NOT_FOUND" for c in calls)
    control.clear_journal()
    assert control.count_calls() == 0


def test_wait_for_calls_times_out_saying_what_it_saw(workflows_fake):
    with pytest.raises(grpc.RpcError) as failure:
        workflows_fake.control.wait_for_calls("GetWorkflow", 1, timeout=0.2)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_set_health_is_seen_by_health_check(workflows_fake):
    assert health(workflows_fake) == health_pb2.HealthCheckResponse.SERVING
    workflows_fake.control.set_health("NOT_SERVING")
    assert health(workflows_fake) == \
        health_pb2.HealthCheckResponse.NOT_SERVING


def test_sessions_scope_rules_and_journal(workflows_fake):
    job = workflows_fake.control.session("ci-job-1")
    assert job.load_scenario(BROKEN_RULE) == 1
    channel, stub = workflows(workflows_fake)
    with channel:
        # Outside the session the rule does not apply: plain NOT_FOUND.
        with pytest.raises(grpc.RpcError) as outside:
            get_workflow(stub, "ci@example.com:broken")
        with pytest.raises(grpc.RpcError) as inside:
            get_workflow(stub, "ci@example.com:broken",
                         metadata=job.session_metadata())
    assert outside.value.code() == grpc.StatusCode.NOT_FOUND
    assert inside.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert job.session_metadata() == ((SESSION_METADATA_KEY, "ci-job-1"),)
    job.wait_for_calls("GetWorkflow", 1)
    assert [c.session for c in job.get_journal()] == ["ci-job-1"]
    assert workflows_fake.control.count_calls("GetWorkflow") == 2
    job.reset()
    assert job.count_calls() == 0


@pytest.mark.workflows_fake(control_token="s3cret-token")
def test_control_token_is_passed_through(workflows_fake):
    workflows_fake.control.set_health("NOT_SERVING")  # sends the token
    with FakeControl(workflows_fake.address) as no_token:
        with pytest.raises(grpc.RpcError) as failure:
            no_token.set_health("SERVING")
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with FakeControl(workflows_fake.address, token="wrong") as wrong:
        with pytest.raises(grpc.RpcError) as failure:
            wrong.set_health("SERVING")
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert health(workflows_fake) == \
        health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.workflows_fake(tls=True)
def test_tls_control_and_workflows(workflows_fake):
    credentials = workflows_fake.channel_credentials()
    with grpc.secure_channel(workflows_fake.address, credentials) as channel:
        with pytest.raises(grpc.RpcError) as failure:
            get_workflow(workflow_pb2_grpc.WorkflowAPIStub(channel),
                         "ci@example.com:missing")
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    workflows_fake.control.wait_for_calls("GetWorkflow", 1)


def test_clean_stop_returns_zero_and_keeps_the_journal():
    server = FakeServer(scenarios=[HEALTHY]).start()
    channel, stub = workflows(server)
    with channel:
        get_workflow(stub, "ci@example.com:ndvi")
    assert server.stop() == 0
    assert server.stop() == 0  # idempotent
    journal = server.final_journal()
    assert [c.method for c in journal.calls] == [GET_WORKFLOW]
    assert journal.calls[0].status_code == "OK"


def test_killed_server_makes_stop_raise():
    server = FakeServer().start()
    os.kill(server._process.pid, signal.SIGKILL)
    server._process.wait()
    with pytest.raises(FakeServerError, match="exited with signal 9"):
        server.stop()


def test_startup_failure_names_the_servers_error(tmp_path):
    with pytest.raises(FakeServerError) as failure:
        FakeServer(scenarios=[str(tmp_path / "missing.textproto")]).start()
    message = str(failure.value)
    assert "before serving" in message
    assert "missing.textproto: cannot read scenario file" in message


def test_managed_flags_and_bad_tokens_are_refused():
    with pytest.raises(ValueError, match="--journal=x is set by FakeServer"):
        FakeServer(flags=["--journal=x"])
    with pytest.raises(ValueError, match="visible ASCII"):
        FakeServer(control_token="has space")


def test_context_manager_stops_the_server():
    with FakeServer() as server:
        process = server._process
        assert health(server) == health_pb2.HealthCheckResponse.SERVING
    assert process.returncode == 0
    assert server.exit_code == 0


if __name__ == "__main__":
    binary = os.path.abspath(sys.argv[1])
    os.environ["WORKFLOWS_FAKE_SERVER_BINARY"] = binary
    os.environ["WORKFLOWS_FAKE_TEST_HEALTHY_SCENARIO"] = os.path.join(
        os.path.dirname(binary), "scenarios", "healthy.textproto")
    # descarteslabs_client_test.py, the docs' example, is collected too: it
    # skips itself where descarteslabs is not installed (here).
    example = os.path.join(os.path.dirname(__file__),
                           "descarteslabs_client_test.py")
    args = [__file__, example, "-v",
            # The runfiles tree is read-only.
            "-p", "no:cacheprovider",
            # The fixture, as a conftest.py's `pytest_plugins = [...]` loads
            # it.
            "-p", "workflows_fake.pytest_plugin"]
    if "TEST_TMPDIR" in os.environ:
        args.append("--basetemp=" +
                    os.path.join(os.environ["TEST_TMPDIR"], "pytest"))
    sys.exit(pytest.main(args + sys.argv[2:]))
