"""pytest fixtures for the standalone fake Workflows server.

Enable in a conftest.py:

    pytest_plugins = ["workflows_fake.pytest_plugin"]

then:

    @pytest.mark.workflows_fake(scenarios=["outage.textproto"],
                                control_token="s3cret")
    def test_outage(workflows_fake):
        client = MyClient(workflows_fake.address)
        ...
        workflows_fake.control.wait_for_calls("GetWorkflow", 1)

`workflows_fake` is a running FakeServer, one per test, stopped after the
test (the test fails if the server did not exit cleanly). The marker's
keyword arguments go to FakeServer (scenarios, flags, control_token, tls,
startup_timeout, stop_timeout, binary). The binary is the marker's
`binary`, else --workflows-fake-binary, else $WORKFLOWS_FAKE_SERVER_BINARY.
"""

import pytest

from workflows_fake.server import FakeServer


def pytest_addoption(parser):
    parser.addoption(
        "--workflows-fake-binary", default=None,
        help="path of workflows_fake_server for the workflows_fake fixture "
             "(default: $WORKFLOWS_FAKE_SERVER_BINARY)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "workflows_fake(**kwargs): FakeServer arguments for the "
        "workflows_fake fixture (scenarios, flags, control_token, tls, ...)")


@pytest.fixture
def workflows_fake(request):
    """A started FakeServer; stopped (and checked) after the test."""
    kwargs = {}
    marker = request.node.get_closest_marker("workflows_fake")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(
                "@pytest.mark.workflows_fake takes keyword arguments only")
        kwargs.update(marker.kwargs)
    kwargs.setdefault("binary",
                      request.config.getoption("--workflows-fake-binary"))
    server = FakeServer(**kwargs)
    server.start()
    try:
        yield server
    finally:
        # Raises FakeServerError (an error in the test's teardown) when the
        # server exits badly.
        server.stop()
