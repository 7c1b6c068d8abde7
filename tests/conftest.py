"""Fixtures that run the real `cairn` binary and point real AWS clients at it."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import boto3
import botocore.config
import botocore.exceptions
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = os.environ.get("CAIRN_BIN", str(ROOT / "target" / "debug" / "cairn"))

ACCOUNT_A = "111111111111"
ACCOUNT_B = "222222222222"

# Read-only: look, never change.
AUDITOR_POLICY = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Resource": "*",
    "Action": ["cloudtrail:Describe*", "cloudtrail:Get*", "cloudtrail:List*", "cloudtrail:LookupEvents",
               "logs:Describe*", "logs:FilterLogEvents", "logs:GetLogEvents"]}]}

# Runs app-* trails and log groups, but may not stop or delete a trail. Its patterns name
# every account; it still reaches only its own.
OPERATOR_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "cloudtrail:*", "Resource": "arn:aws:cloudtrail:*:*:trail/app-*"},
    {"Effect": "Allow", "Action": ["cloudtrail:DescribeTrails", "cloudtrail:LookupEvents"], "Resource": "*"},
    {"Effect": "Allow", "Action": "logs:*", "Resource": "arn:aws:logs:*:*:log-group:app-*:*"},
    {"Effect": "Deny", "Action": ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail"], "Resource": "*"}]}

# May do anything but a few things to a few named resources.
GUARDED_POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "*", "Resource": "*"},
    {"Effect": "Deny", "Action": ["cloudtrail:StopLogging", "cloudtrail:AddTags"],
     "Resource": "arn:aws:cloudtrail:*:*:trail/prod"},
    {"Effect": "Deny", "Action": "cloudtrail:DeleteChannel", "Resource": "arn:aws:cloudtrail:*:*:channel/*"},
    {"Effect": "Deny", "Action": "logs:FilterLogEvents", "Resource": "arn:aws:logs:*:*:log-group:secret"}]}

# Two accounts; account A has an IAM user, root keys, a read-only auditor and a guarded
# user, account B a user and an operator with a narrow policy.
USERS = {
    "alice": dict(account=ACCOUNT_A, key="AKIAALICE00000000001", secret="alice-secret-key-0000000000000000000001"),
    "root_a": dict(account=ACCOUNT_A, key="AKIAROOTA0000000001", secret="root-a-secret-key-00000000000000000001", root=True),
    "auditor": dict(account=ACCOUNT_A, key="AKIAAUDITOR00000001", secret="auditor-secret-key-000000000000000001",
                    policy=AUDITOR_POLICY),
    "guarded": dict(account=ACCOUNT_A, key="AKIAGUARDED00000001", secret="guarded-secret-key-000000000000000001",
                    policy=GUARDED_POLICY),
    "bob": dict(account=ACCOUNT_B, key="AKIABOB000000000001", secret="bob-secret-key-000000000000000000000001"),
    "operator": dict(account=ACCOUNT_B, key="AKIAOPERATOR0000001", secret="operator-secret-key-00000000000000001",
                     policy=OPERATOR_POLICY),
}


ORG_ID = "o-cairntest01"


def config_text(data_dir, top="", tail=""):
    """The test accounts' config; `top` adds top-level settings, `tail` more tables."""
    accounts = {}
    for name, u in USERS.items():
        accounts.setdefault(u["account"], []).append((name, u))
    out = [f'data_dir = "{data_dir}"', 'listen = "127.0.0.1:0"', "max_body_bytes = 1048576", top]
    for account, users in accounts.items():
        out.append(f'[[accounts]]\nid = "{account}"')
        for name, u in users:
            out.append(
                textwrap.dedent(
                    f"""\
                    [[accounts.users]]
                    name = "{name}"
                    root = {"true" if u.get("root") else "false"}
                    access_key_id = "{u["key"]}"
                    secret_access_key = "{u["secret"]}"
                    """
                )
            )
            if "policy" in u:
                out.append(f"policy = '''{json.dumps(u['policy'])}'''")
    out.append(tail)
    return "\n".join(out)


def trails_config(data_dir, top="", tail="", local_buckets=True):
    """Two local buckets, 1-second delivery, 2-second digests, and an organization: A
    manages, B is a member."""
    buckets = 'buckets = ["trail-bucket", "other-bucket"]\n' if local_buckets else ""
    return config_text(
        data_dir,
        top=buckets + top,
        tail=f'[delivery]\ninterval_ms = 1000\n[digests]\nperiod_secs = 2\n[[organizations]]\nid = "{ORG_ID}"\n'
        f'management_account = "{ACCOUNT_A}"\nmember_accounts = ["{ACCOUNT_B}"]\n' + tail,
    )


def wait_for(check, timeout=20, interval=0.1):
    """Polls `check` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.time() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last result {result!r}")
        time.sleep(interval)


@contextlib.contextmanager
def writing(*writers):
    """Runs each `writer(stop)` in a thread of its own while the block runs; at its end
    sets `stop` and waits for the writers."""
    stop = threading.Event()
    threads = [threading.Thread(target=writer, args=(stop,)) for writer in writers]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join()


def kill_during(server, writers, seconds):
    """Runs each `writer(stop)` in a thread of its own and SIGKILLs `server` after
    `seconds`; then waits for the writers."""
    with writing(*writers):
        time.sleep(seconds)
        server.kill()


class Cairn:
    """A running cairn server on a private data directory."""

    def __init__(self, data_dir, config=None, env=None):
        self.data_dir = Path(data_dir)
        self.config = config
        self.env = dict(os.environ, CAIRN_LOG="warn", **(env or {}))
        self.proc = None
        self.endpoint = None
        self.banner = ""

    def start(self):
        args = [BIN, "serve"]
        if self.config:
            args += ["--config", str(self.config)]
        # The log goes to a file: a pipe nobody reads would stall the server once full.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=self.log, text=True, env=self.env, cwd=self.data_dir.parent
        )
        lines = []
        deadline = time.time() + 30
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.proc.wait()
                self.log.seek(0)
                raise RuntimeError("cairn exited: " + self.log.read())
            lines.append(line)
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.endpoint = m.group(1)
                break
        # The banner ends with the example command.
        while "lookup-events" not in lines[-1]:
            lines.append(self.proc.stdout.readline())
        self.banner = "".join(lines)
        return self

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def aws(self, service, *args, user="alice", region="us-east-1"):
        """Runs the AWS CLI against this server: (exit status, stdout, stderr)."""
        u = USERS[user]
        env = dict(os.environ, AWS_ACCESS_KEY_ID=u["key"], AWS_SECRET_ACCESS_KEY=u["secret"], AWS_DEFAULT_REGION=region)
        out = subprocess.run(["aws", "--endpoint-url", self.endpoint, service, *args, "--output", "json"],
                             env=env, capture_output=True, text=True, timeout=60)
        return out.returncode, out.stdout, out.stderr

    def client(self, user="alice", region="us-east-1", service="cloudtrail", **config):
        u = USERS[user]
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=u["key"],
            aws_secret_access_key=u["secret"],
            config=botocore.config.Config(**{"retries": {"max_attempts": 0}, **config}),
        )


def error_of(call, **kw):
    """The AWS error (`{"Code", "Message"}`) a client call is answered with."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(**kw)
    return e.value.response["Error"]


def lookup_all(client, **kw):
    """Every event a LookupEvents query finds, following NextToken to the end."""
    events, token = [], None
    while True:
        page = client.lookup_events(**kw, **({"NextToken": token} if token else {}))
        events += page["Events"]
        token = page.get("NextToken")
        if not token:
            return events


def all_records(client):
    """Every record in the caller's history, parsed."""
    return [json.loads(e["CloudTrailEvent"]) for e in lookup_all(client, MaxResults=50)]


@pytest.fixture
def workdir():
    with tempfile.TemporaryDirectory(prefix="cairn-test-") as d:
        yield Path(d)


def serve(workdir, config_for, env=None):
    """Starts a server on `workdir/data` with the config `config_for(data_dir)` returns."""
    config = workdir / "cairn.toml"
    config.write_text(config_for(workdir / "data"))
    return Cairn(workdir / "data", config=config, env=env).start()


@pytest.fixture
def trails_cairn(workdir):
    """A server with buckets, 1-second delivery and an organization."""
    server = serve(workdir, trails_config)
    yield server
    server.stop()


@pytest.fixture
def cairn(workdir):
    """A server with the two test accounts."""
    server = serve(workdir, config_text)
    yield server
    server.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_s3():
    """A real S3-compatible server (moto_server) on a loopback port: (port, boto3 S3 client)."""
    port = free_port()
    proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")

    def up():
        try:
            s3.list_buckets()
            return True
        except Exception:
            return False

    wait_for(up, timeout=30)
    yield port, s3
    proc.terminate()
    proc.wait()


def s3_settings(port):
    """The config section that puts every bucket on the S3 server at `port`."""
    return (f'[s3]\nendpoint = "http://127.0.0.1:{port}"\nregion = "us-east-1"\n'
            'access_key_id = "testing"\nsecret_access_key = "testing"\n')
