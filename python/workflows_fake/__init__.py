"""Run the standalone fake Workflows server from Python tests.

    from workflows_fake import FakeServer

    with FakeServer(scenarios=["outage.textproto"]) as fake:
        channel = grpc.insecure_channel(fake.address)
        ...  # the code under test talks to fake.address
        fake.control.wait_for_calls("GetWorkflow", 1)
        assert len(fake.control.get_journal("GetWorkflow")) == 1

See server.py for FakeServer and FakeControl, pytest_plugin.py for the
`workflows_fake` fixture, and docs/python.md.
"""

from workflows_fake.server import FakeControl
from workflows_fake.server import FakeServer
from workflows_fake.server import FakeServerError
from workflows_fake.server import SESSION_METADATA_KEY

__all__ = ["FakeControl", "FakeServer", "FakeServerError",
           "SESSION_METADATA_KEY"]
