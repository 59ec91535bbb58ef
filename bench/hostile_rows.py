"""Measures how the standalone fake server holds up as a shared CI service.

Each row drives one hostile or careless input at a fresh server process on
127.0.0.1 and prints what it cost: exit codes, RSS, CPU-seconds, response
sizes, journal statuses. It measures; it asserts nothing (the tests in
tests/hostile, tests/scenarios and tests/stress do that).

    bazel build -c opt //fake_server:workflows_fake_server \
        //python:stubs
    /usr/bin/python3 bench/hostile_rows.py \
        bazel-bin/fake_server/workflows_fake_server \
        bazel-bin/python [ROW ...]

Rows: deep advance token big many hung unparsable deadline symlink
control_token sigterm (default: all). FAKE_SERVER_FLAGS adds flags to every
server started (e.g. to measure an older binary without newer flags, leave
it empty). Needs Debian's python3-grpcio.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time

import grpc
from google.protobuf import duration_pb2

RPC_TIMEOUT_S = 10
LARGE = 64 << 20  # client message limits, so the client never refuses first
HANG_SCENARIO = 'rules { method: "GetJob" behavior { hang: true } }'


def proc_status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seconds(value):
    return duration_pb2.Duration(seconds=value)


def code_of(call):
    try:
        call()
        return "OK"
    except grpc.RpcError as error:
        return error.code().name


class Server:
    """The binary as a child process on a free loopback port."""

    def __init__(self, binary, *flags):
        self.dir = tempfile.mkdtemp()
        port_file = os.path.join(self.dir, "port")
        self.journal = os.path.join(self.dir, "journal.textproto")
        extra = os.environ.get("FAKE_SERVER_FLAGS", "").split()
        self.process = subprocess.Popen(
            [binary, "--listen=127.0.0.1:0", "--port_file=" + port_file,
             "--journal=" + self.journal] + extra + list(flags),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(port_file):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        with open(port_file) as f:
            port = int(f.read())
        self.channel = grpc.insecure_channel(
            "127.0.0.1:%d" % port,
            options=[("grpc.max_receive_message_length", LARGE),
                     ("grpc.max_send_message_length", LARGE),
                     ("grpc.max_metadata_size", LARGE)])
        self.control = control_pb2_grpc.FakeControlStub(self.channel)
        self.jobs = job_pb2_grpc.JobAPIStub(self.channel)

    @property
    def pid(self):
        return self.process.pid

    def load(self, text):
        self.control.LoadScenario(
            control_pb2.LoadScenarioRequest(scenario_text=text),
            timeout=RPC_TIMEOUT_S)

    def stop(self, timeout=15):
        """SIGTERM; returns (exit code or 'killed', seconds taken)."""
        self.channel.close()
        start = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            code = "killed after %ds" % timeout
        return code, time.monotonic() - start

    def journal_mode(self):
        if not os.path.exists(self.journal):
            return "none"
        return oct(os.stat(self.journal).st_mode & 0o777)


def report(row, **values):
    print(row, " ".join("%s=%s" % item for item in values.items()),
          flush=True)


def row_deep(binary):
    levels = 10000
    text = ('seed { jobs { id: "j" typespec { ' +
            "composite { params { " * levels + "} } " * levels + "} } }")
    server = Server(binary)
    try:
        server.load(text)
        result = "OK"
    except grpc.RpcError as error:
        result = "%s: %s" % (error.code().name, error.details()[:100])
    alive = server.process.poll() is None
    code = server.stop()[0] if alive else server.process.returncode
    report("deep", bytes=len(text), result=repr(result), exit=code)


def row_advance(binary):
    server = Server(binary, "--simulated_clock")
    server.load('seed { jobs { id: "j1" state { stage: QUEUED } } }')
    advance = code_of(lambda: server.control.AdvanceClock(
        control_pb2.AdvanceClockRequest(duration=seconds(2**63 - 1)),
        timeout=RPC_TIMEOUT_S))
    start = time.monotonic()
    get = code_of(lambda: server.jobs.GetJob(
        job_pb2.GetJobRequest(id="j1"), timeout=5))
    took = time.monotonic() - start
    rss = proc_status_kb(server.pid, "VmRSS")
    code, stop_s = server.stop(timeout=10)
    report("advance", advance=advance, get_job=get, get_job_s="%.2f" % took,
           rss_kb=rss, exit=code, stop_s="%.1f" % stop_s)


def row_token(binary):
    secret = "s3cr3t-token-value"
    server = Server(binary)
    code_of(lambda: server.jobs.GetJob(
        job_pb2.GetJobRequest(id="x"),
        metadata=[("authorization", "Bearer " + secret)],
        timeout=RPC_TIMEOUT_S))
    journal = server.control.GetJournal(control_pb2.GetJournalRequest(),
                                        timeout=RPC_TIMEOUT_S)
    code = server.stop()[0]
    with open(server.journal) as f:
        written = f.read()
    report("token", in_get_journal=secret in str(journal),
           in_journal_file=secret in written,
           journal_mode=server.journal_mode(), exit=code)


def row_big(binary):
    server = Server(binary)
    rss_before = proc_status_kb(server.pid, "VmRSS")
    for i in range(60):
        code_of(lambda: server.jobs.GetJob(
            job_pb2.GetJobRequest(id="%02d" % i + "x" * (3 << 20)),
            timeout=RPC_TIMEOUT_S))
    rss_after = proc_status_kb(server.pid, "VmRSS")
    code, stop_s = server.stop(timeout=60)
    report("big", rss_growth_mb=(rss_after - rss_before) // 1024,
           journal_file_mb="%.1f" % (os.path.getsize(server.journal) / 2**20),
           exit=code, stop_s="%.1f" % stop_s)


def row_many(binary):
    server = Server(binary)
    for i in range(12000):
        code_of(lambda: server.jobs.GetJob(job_pb2.GetJobRequest(id="j%d" % i),
                                           timeout=RPC_TIMEOUT_S))
    start = time.monotonic()
    response = server.control.GetJournal(control_pb2.GetJournalRequest(),
                                         timeout=30)
    took = time.monotonic() - start
    more = [f.name for f, _ in response.ListFields() if f.name != "journal"]
    report("many", first_response_mib="%.2f" % (response.ByteSize() / 2**20),
           calls=len(response.journal.calls), paging_fields=more,
           get_s="%.2f" % took)
    server.stop()


def row_hung(binary):
    server = Server(binary)
    server.load(HANG_SCENARIO)
    calls = [server.jobs.GetJob.future(job_pb2.GetJobRequest(id="h%d" % i),
                                       timeout=120) for i in range(200)]
    server.control.WaitForCalls(
        control_pb2.WaitForCallsRequest(method="GetJob", count=200,
                                        in_flight=True, timeout=seconds(60)),
        timeout=70)
    before = cpu_seconds(server.pid)
    time.sleep(10)  # the measurement window, not a wait for an event
    cpu = (cpu_seconds(server.pid) - before) / 10
    threads = len(os.listdir("/proc/%d/task" % server.pid))
    for call in calls:
        call.cancel()
    code = server.stop()[0]
    report("hung", cpu_seconds_per_second="%.3f" % cpu, threads=threads,
           exit=code)


def row_unparsable(binary):
    server = Server(binary)
    raw = server.channel.unary_unary(
        "/descarteslabs.workflows.JobAPI/GetJob",
        request_serializer=lambda body: body,
        response_deserializer=lambda body: body)
    codes = [code_of(lambda: raw(body, timeout=RPC_TIMEOUT_S))
             for body in (b"\xff\xff\xff\xff", b"\x0a\x80\x80\x80\x80\x80")]
    codes.append(code_of(lambda: server.jobs.GetJob(
        job_pb2.GetJobRequest(id="y" * (5 << 20)), timeout=RPC_TIMEOUT_S)))
    journal = server.control.GetJournal(control_pb2.GetJournalRequest(),
                                        timeout=RPC_TIMEOUT_S)
    report("unparsable", sent=len(codes), client_codes=codes,
           journaled=len(journal.journal.calls))
    server.stop()


def row_deadline(binary):
    server = Server(binary)
    server.load(HANG_SCENARIO)
    client = [code_of(lambda: server.jobs.GetJob(
        job_pb2.GetJobRequest(id="d%d" % i), timeout=0.05)) for i in range(20)]
    server.control.WaitForCalls(
        control_pb2.WaitForCallsRequest(method="GetJob", count=20,
                                        timeout=seconds(10)),
        timeout=20)
    journal = server.control.GetJournal(
        control_pb2.GetJournalRequest(method="GetJob"), timeout=RPC_TIMEOUT_S)
    statuses = [call.status_code for call in journal.journal.calls]
    report("deadline", client_deadline_exceeded=client.count(
        "DEADLINE_EXCEEDED"),
           journal_deadline_exceeded=statuses.count("DEADLINE_EXCEEDED"),
           journal_cancelled=statuses.count("CANCELLED"))
    server.stop()


def row_symlink(binary):
    root = tempfile.mkdtemp()
    victim = os.path.join(root, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    tls_dir = os.path.join(root, "tls")
    os.mkdir(tls_dir, 0o700)
    os.symlink(victim, os.path.join(tls_dir, "server.key"))
    try:
        server = Server(binary, "--tls_self_signed_dir=" + tls_dir)
        code = server.stop()[0]
    except RuntimeError:
        code = "refused at start"
    with open(victim) as f:
        intact = f.read() == "precious\n"
    report("symlink", victim_intact=intact, server=code)


def row_control_token(binary):
    token_file = os.path.join(tempfile.mkdtemp(), "token")
    with open(token_file, "w") as f:
        f.write("control-secret\n")
    server = Server(binary, "--control_token_file=" + token_file)
    codes = [code_of(lambda: server.control.Reset(
        control_pb2.ResetRequest(), metadata=metadata, timeout=RPC_TIMEOUT_S))
             for metadata in (None, [("authorization", "Bearer wrong")],
                              [("authorization", "Bearer control-secret")])]
    report("control_token", none_wrong_right=codes)
    server.stop()


def row_sigterm(binary):
    server = Server(binary)
    server.load(HANG_SCENARIO)
    calls = [server.jobs.GetJob.future(job_pb2.GetJobRequest(id="s%d" % i),
                                       timeout=120) for i in range(50)]
    server.control.WaitForCalls(
        control_pb2.WaitForCallsRequest(method="GetJob", count=50,
                                        in_flight=True, timeout=seconds(60)),
        timeout=70)
    code, stop_s = server.stop()
    report("sigterm", hung_calls=len(calls), exit=code,
           stop_s="%.2f" % stop_s, journal_mode=server.journal_mode())


ROWS = {
    "deep": row_deep, "advance": row_advance, "token": row_token,
    "big": row_big, "many": row_many, "hung": row_hung,
    "unparsable": row_unparsable, "deadline": row_deadline,
    "symlink": row_symlink, "control_token": row_control_token,
    "sigterm": row_sigterm,
}

if __name__ == "__main__":
    if len(sys.argv) < 3 or any(row not in ROWS for row in sys.argv[3:]):
        sys.exit(__doc__)
    sys.path.insert(0, sys.argv[2])
    from fake_server import control_pb2, control_pb2_grpc  # noqa: E402
    from proto import job_pb2, job_pb2_grpc  # noqa: E402
    for name in sys.argv[3:] or ROWS:
        try:
            ROWS[name](sys.argv[1])
        except Exception as error:  # one row's failure must not hide others
            report(name, error=repr(error)[:200])
