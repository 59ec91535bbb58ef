"""FakeServer: the standalone fake Workflows server as a child process, and
FakeControl: a client of its control service (workflows.fake.FakeControl).

    with FakeServer(binary="bazel-bin/fake_server/workflows_fake_server",
                    scenarios=["fake_server/scenarios/healthy.textproto"],
                    control_token="s3cret") as fake:
        stub = workflow_pb2_grpc.WorkflowAPIStub(
            grpc.insecure_channel(fake.address))
        stub.GetWorkflow(workflow_pb2.GetWorkflowRequest(id="a@b.c:x"))
        assert fake.control.count_calls("GetWorkflow") == 1
    # Leaving the block stops the server (SIGTERM) and raises FakeServerError
    # if it did not exit 0; fake.final_journal() is what it wrote on exit.

Needs grpcio and protobuf, and the Python modules protoc generates from
fake_server/{control,journal,scenario}.proto and proto/*.proto (the
//python:workflows_fake Bazel target provides them).
"""

import atexit
import os
import shutil
import signal
import subprocess
import tempfile
import time

import grpc
from google.protobuf import duration_pb2
from google.protobuf import text_format

from fake_server import control_pb2
from fake_server import control_pb2_grpc
from fake_server import journal_pb2

# The journal's requests and responses are Anys of these messages: importing
# them registers their types for final_journal()'s text parsing.
from proto import discover_pb2  # noqa: F401
from proto import job_pb2  # noqa: F401
from proto import workflow_pb2  # noqa: F401
from proto import xyz_pb2  # noqa: F401
try:
    import health_pb2  # noqa: F401  (grpc.health.v1, generated top-level)
except ImportError:  # Health calls' Anys then stay unparsed.
    pass

# The request metadata key that puts a call in a session.
SESSION_METADATA_KEY = "x-fake-session"
# The environment variable naming the binary when `binary` is not given.
BINARY_ENV = "WORKFLOWS_FAKE_SERVER_BINARY"
# Flags FakeServer sets itself.
_MANAGED_FLAGS = ("--listen", "--port_file", "--journal",
                  "--control_token_file", "--tls_self_signed_dir")
# The server refuses longer control tokens.
MAX_CONTROL_TOKEN_BYTES = 4096
_MAX_TIMEOUT_S = 3600.0
_LOG_TAIL_BYTES = 8192
_running = set()


class FakeServerError(Exception):
    """The server failed to start, or did not exit cleanly."""


def _check_timeout(name, value):
    if not isinstance(value, (int, float)) or not 0 < value <= _MAX_TIMEOUT_S:
        raise ValueError("%s=%r: must be a number of seconds in (0, %d]"
                         % (name, value, _MAX_TIMEOUT_S))
    return float(value)


class FakeControl:
    """A client of a running fake's control service.

    Every call sends "authorization: Bearer <token>" when a token is given
    (the server's --control_token_file), and fails with grpc.RpcError as the
    service answers (e.g. INVALID_ARGUMENT for a bad scenario, with
    source:line:column). `session` scopes every call of this object to one
    session (see session()).
    """

    def __init__(self, target, token=None, session="", timeout=30.0,
                 channel_credentials=None):
        """target: "host:port" or a grpc.Channel (then not closed by
        close()). token: the control token, or None. timeout: seconds each
        control call may take (wait_for_calls adds its own timeout)."""
        if token is not None:
            _check_token(token)
        self._timeout = _check_timeout("timeout", timeout)
        self._token = token
        self._session = session
        if isinstance(target, str):
            if channel_credentials is None:
                self._channel = grpc.insecure_channel(target)
            else:
                self._channel = grpc.secure_channel(target,
                                                    channel_credentials)
            self._owns_channel = True
        else:
            self._channel = target
            self._owns_channel = False
        self._stub = control_pb2_grpc.FakeControlStub(self._channel)

    @classmethod
    def from_environment(cls, **kwargs):
        """The control service of the fake a workflows_fake_server_test runs
        (WORKFLOWS_FAKE_CONTROL_ADDRESS, WORKFLOWS_FAKE_CONTROL_TOKEN_FILE,
        WORKFLOWS_FAKE_TLS_CA_FILE)."""
        address = os.environ.get("WORKFLOWS_FAKE_CONTROL_ADDRESS")
        if not address:
            raise FakeServerError(
                "WORKFLOWS_FAKE_CONTROL_ADDRESS is not set: not running "
                "under workflows_fake_server_test")
        token_file = os.environ.get("WORKFLOWS_FAKE_CONTROL_TOKEN_FILE")
        if token_file:
            kwargs.setdefault("token", _read_token_file(token_file))
        ca_file = os.environ.get("WORKFLOWS_FAKE_TLS_CA_FILE")
        if ca_file:
            with open(ca_file, "rb") as f:
                kwargs.setdefault("channel_credentials",
                                  grpc.ssl_channel_credentials(f.read()))
        return cls(address, **kwargs)

    @property
    def channel(self):
        return self._channel

    def session(self, session):
        """A FakeControl on the same channel whose calls all act on
        `session`; send SESSION_METADATA_KEY: session with the calls under
        test (see session_metadata())."""
        if not session:
            raise ValueError("session must be non-empty")
        return FakeControl(self._channel, token=self._token, session=session,
                           timeout=self._timeout)

    def session_metadata(self):
        """The metadata that puts a call in this object's session."""
        return ((SESSION_METADATA_KEY, self._session),) if self._session \
            else ()

    def close(self):
        if self._owns_channel:
            self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *unused):
        self.close()

    def _call(self, method, request, timeout=None):
        metadata = ()
        if self._token is not None:
            metadata = (("authorization", "Bearer " + self._token),)
        return getattr(self._stub, method)(
            request, timeout=timeout or self._timeout, metadata=metadata)

    def load_scenario(self, scenario_text, source_name="", merge=False):
        """Loads a workflows.fake.Scenario textproto (all or nothing);
        returns how many rules were loaded."""
        return self._call("LoadScenario", control_pb2.LoadScenarioRequest(
            scenario_text=scenario_text, source_name=source_name,
            merge=merge, session=self._session)).rules_loaded

    def load_scenario_file(self, path, merge=False):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        return self.load_scenario(text, source_name=os.path.basename(path),
                                  merge=merge)

    def reset(self):
        self._call("Reset", control_pb2.ResetRequest(session=self._session))

    def set_health(self, status, service=""):
        """status: "SERVING", "NOT_SERVING" or "UNKNOWN"; service "" is the
        whole server."""
        self._call("SetHealth", control_pb2.SetHealthRequest(
            service=service, status=status))

    def get_journal_page(self, method="", page_size=0, page_token=""):
        """One GetJournal response (journal, next_page_token)."""
        return self._call("GetJournal", control_pb2.GetJournalRequest(
            method=method, session=self._session, page_size=page_size,
            page_token=page_token))

    def get_journal(self, method="", page_size=0):
        """Every recorded call (workflows.fake.RecordedCall), oldest first,
        following next_page_token until the last page."""
        calls = []
        token = ""
        while True:
            page = self.get_journal_page(method, page_size, token)
            calls.extend(page.journal.calls)
            token = page.next_page_token
            if not token:
                return calls

    def count_calls(self, method=""):
        return len(self.get_journal(method))

    def clear_journal(self):
        self._call("ClearJournal",
                   control_pb2.ClearJournalRequest(session=self._session))

    def wait_for_calls(self, method, count, timeout=10.0, in_flight=False):
        """Blocks until `count` calls to `method` have ended (or, with
        in_flight, are in flight at once); grpc.RpcError DEADLINE_EXCEEDED
        saying what was seen when `timeout` seconds pass first."""
        timeout = _check_timeout("timeout", timeout)
        seconds = int(timeout)
        request = control_pb2.WaitForCallsRequest(
            method=method, count=count, in_flight=in_flight,
            session=self._session,
            timeout=duration_pb2.Duration(
                seconds=seconds, nanos=int((timeout - seconds) * 1e9)))
        self._call("WaitForCalls", request, timeout=timeout + self._timeout)

    def advance_clock(self, seconds):
        """Moves the simulated clock (server started with
        --simulated_clock); returns the new time (a Timestamp)."""
        whole = int(seconds)
        return self._call("AdvanceClock", control_pb2.AdvanceClockRequest(
            duration=duration_pb2.Duration(
                seconds=whole, nanos=int((seconds - whole) * 1e9)))).now


def _check_token(token):
    if (not isinstance(token, str) or not token
            or len(token) > MAX_CONTROL_TOKEN_BYTES
            or any(not 0x20 < ord(c) < 0x7f for c in token)):
        raise ValueError(
            "control_token must be 1 to %d visible ASCII characters "
            "(no spaces: it is sent as a header value)"
            % MAX_CONTROL_TOKEN_BYTES)


def _read_token_file(path):
    with open(path, encoding="ascii") as f:
        return f.read().rstrip("\r\n")


def _write_private(path, data):
    """Writes a new 0600 file; refuses to follow a symlink or overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)


class FakeServer:
    """workflows_fake_server as a child process on 127.0.0.1, port 0.

    binary: the server executable (default: $WORKFLOWS_FAKE_SERVER_BINARY).
    scenarios: scenario files, passed as --scenario in order.
    flags: more flags (e.g. ["--simulated_clock"]); --listen, --port_file,
      --journal, --control_token_file and --tls_self_signed_dir are refused,
      FakeServer sets them.
    control_token: the control service's bearer token (1 to 4096 visible
      ASCII characters), written to a private file for --control_token_file
      and sent by .control.
    tls: serve TLS with a freshly minted CA; .ca_file is the CA to trust.
    startup_timeout / stop_timeout: seconds to wait for the port file, and
      for the exit after SIGTERM (then SIGKILL and FakeServerError).
    """

    def __init__(self, binary=None, scenarios=(), flags=(),
                 control_token=None, tls=False, startup_timeout=60.0,
                 stop_timeout=30.0):
        binary = binary or os.environ.get(BINARY_ENV)
        if not binary:
            raise FakeServerError(
                "no server binary: pass binary= or set %s to the path of "
                "workflows_fake_server" % BINARY_ENV)
        if not os.access(binary, os.X_OK):
            raise FakeServerError("binary=%s: not an executable file"
                                  % binary)
        for flag in flags:
            if not flag.startswith("--"):
                raise ValueError("flags: %r is not a --flag" % flag)
            if flag.split("=", 1)[0] in _MANAGED_FLAGS:
                raise ValueError(
                    "flags: %s is set by FakeServer (use control_token= or "
                    "tls=True for the token and TLS)" % flag)
        if control_token is not None:
            _check_token(control_token)
        self._binary = os.path.abspath(binary)
        self._scenarios = [os.path.abspath(s) for s in scenarios]
        self._flags = list(flags)
        self._token = control_token
        self._tls = tls
        self._startup_timeout = _check_timeout("startup_timeout",
                                               startup_timeout)
        self._stop_timeout = _check_timeout("stop_timeout", stop_timeout)
        self._process = None
        self._dir = None
        self._control = None
        self._journal_text = None
        self.port = None
        self.exit_code = None

    # --- Lifecycle. ---

    def start(self):
        if self._process is not None:
            raise FakeServerError("already started")
        self._dir = tempfile.mkdtemp(prefix="workflows_fake.",
                                     dir=os.environ.get("TEST_TMPDIR"))
        port_file = os.path.join(self._dir, "port")
        args = [self._binary, "--listen=127.0.0.1:0",
                "--port_file=" + port_file,
                "--journal=" + self.journal_path]
        if self._token is not None:
            token_file = os.path.join(self._dir, "control_token")
            _write_private(token_file, self._token + "\n")
            args.append("--control_token_file=" + token_file)
        if self._tls:
            os.mkdir(os.path.join(self._dir, "tls"), 0o700)
            args.append("--tls_self_signed_dir=" +
                        os.path.join(self._dir, "tls"))
        args += ["--scenario=" + s for s in self._scenarios] + self._flags
        log_fd = os.open(self.log_path,
                         os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                         0o600)
        try:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log_fd,
                stderr=subprocess.STDOUT)
        finally:
            os.close(log_fd)
        _running.add(self)
        # Readiness: the port file appears (atomically) once serving.
        deadline = time.monotonic() + self._startup_timeout
        while not os.path.exists(port_file):
            if self._process.poll() is not None:
                code = self._process.returncode
                _running.discard(self)
                raise FakeServerError(
                    "workflows_fake_server exited with %s before serving:\n%s"
                    % (_describe(code), self.log()))
            if time.monotonic() > deadline:
                self._kill()
                raise FakeServerError(
                    "workflows_fake_server wrote no port file within %g s:\n"
                    "%s" % (self._startup_timeout, self.log()))
            time.sleep(0.01)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        credentials = None
        if self._tls:
            with open(self.ca_file, "rb") as f:
                credentials = grpc.ssl_channel_credentials(f.read())
        # The certificate names localhost and 127.0.0.1: the IP works for
        # both.
        self._control = FakeControl(self.address, token=self._token,
                                    channel_credentials=credentials)
        return self

    def stop(self):
        """SIGTERM, then waits stop_timeout; returns 0 or raises
        FakeServerError (non-zero exit, killed, or SIGKILLed here for not
        stopping). Idempotent."""
        if self._process is None or self.exit_code is not None:
            return self.exit_code
        if self._control is not None:
            self._control.close()
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        try:
            code = self._process.wait(timeout=self._stop_timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            self.exit_code = self._process.returncode
            self._cleanup()
            raise FakeServerError(
                "workflows_fake_server did not exit within %g s of SIGTERM "
                "(killed):\n%s" % (self._stop_timeout, self.log()))
        self.exit_code = code
        if os.path.exists(self.journal_path):
            with open(self.journal_path, encoding="utf-8") as f:
                self._journal_text = f.read()
        log = self.log()
        self._cleanup()
        if code != 0:
            raise FakeServerError(
                "workflows_fake_server exited with %s after SIGTERM (want "
                "0):\n%s" % (_describe(code), log))
        return code

    def _kill(self):
        self._process.kill()
        self._process.wait()
        _running.discard(self)

    def _cleanup(self):
        _running.discard(self)
        self._last_log = self.log()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop()
        except FakeServerError:
            if exc_type is None:
                raise
            # The body's exception is the one to see; the server's problem
            # is attached to it.
            if hasattr(exc, "add_note"):
                exc.add_note("and the fake server did not stop cleanly")
        return False

    # --- What a test uses. ---

    @property
    def address(self):
        """127.0.0.1:PORT, the Workflows services and the control service."""
        if self.port is None:
            raise FakeServerError("not started")
        return "127.0.0.1:%d" % self.port

    @property
    def control(self):
        """A FakeControl connected to this server (with its token)."""
        if self._control is None:
            raise FakeServerError("not started")
        return self._control

    @property
    def ca_file(self):
        """With tls=True: the PEM CA clients must trust (while running)."""
        if not self._tls:
            raise FakeServerError("not serving TLS (tls=False)")
        return os.path.join(self._dir, "tls", "ca.pem")

    def channel_credentials(self):
        """With tls=True: grpc.ssl_channel_credentials trusting ca_file."""
        with open(self.ca_file, "rb") as f:
            return grpc.ssl_channel_credentials(f.read())

    @property
    def journal_path(self):
        return os.path.join(self._dir, "journal.textproto")

    @property
    def log_path(self):
        return os.path.join(self._dir, "server.log")

    def log(self):
        """The last 8 KiB of the server's stdout and stderr."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - _LOG_TAIL_BYTES))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return getattr(self, "_last_log", "")

    def final_journal(self):
        """After stop(): the journal the server wrote on exit, a
        workflows.fake.JournalDump."""
        if self._journal_text is None:
            raise FakeServerError("no journal: the server has not stopped "
                                  "cleanly yet")
        return text_format.Parse(self._journal_text,
                                 journal_pb2.JournalDump(),
                                 allow_unknown_field=True)


def _describe(code):
    if code is not None and code < 0:
        return "signal %d" % -code
    return "status %s" % code


@atexit.register
def _stop_leftovers():
    # A server still running when the interpreter exits (a test that
    # forgot stop()) is killed, not left behind.
    for server in list(_running):
        if server._process is not None and server._process.poll() is None:
            server._process.kill()
            server._process.wait()
