"""The real descarteslabs Python client (v1.10 to v1.12) against the fake,
as in docs/python.md.

Not run here: descarteslabs is not installable in this repository's offline
build, so pytest skips this module unless `descarteslabs.workflows` imports.
With descarteslabs installed, run it like workflows_fake_test.py.
"""

import pytest

pytest_plugins = ["workflows_fake.pytest_plugin"]

# Skips the module where descarteslabs is not installed.
dl_client = pytest.importorskip("descarteslabs.workflows.client")

SERVING = 1
NOT_SERVING = 2


class FakeAuth:
    """The client only reads `.token` (sent as authorization: Bearer)."""

    token = "test-token"


@pytest.fixture
def client(workflows_fake):
    # TLS like production: the client always sends its token over TLS, and
    # v1.10's Client cannot make an insecure channel. The fake's minted
    # certificate names 127.0.0.1 and localhost.
    host, port = workflows_fake.address.rsplit(":", 1)
    with open(workflows_fake.ca_file, "rb") as ca:
        certificate = ca.read()
    client = dl_client.Client(host=host, port=port, auth=FakeAuth(),
                              certificate=certificate)
    yield client
    client.close()


@pytest.mark.workflows_fake(tls=True)
def test_health_follows_the_fake(workflows_fake, client):
    assert client.health().status == SERVING
    workflows_fake.control.set_health("NOT_SERVING")
    assert client.health().status == NOT_SERVING
    calls = workflows_fake.control.get_journal("Check")
    assert len(calls) == 2
    # What the client sent: its channel header and a bearer token.
    for call in calls:
        assert ("x-wf-channel", "v0-19") in [
            (m.key, m.value) for m in call.request_metadata]
        assert call.identity.has_bearer_token
