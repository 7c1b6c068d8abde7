"""Backpressure: a ceiling on request bodies in memory. Past it callers are slowed with
ThrottlingException, nothing acknowledged is lost, and a stalled body gives its share back."""

import socket
import subprocess
import threading
import time
import urllib.parse

import pytest

from conftest import BIN, USERS, config_text, error_of, lookup_all, serve
from sigv4_client import signed_request
from test_bulk import put, record

# Bodies up to 1 MiB (conftest), and at most 1 MiB of them in memory at once.
CEILING = "max_inflight_bytes = 1048576\nbody_timeout_secs = 2\n"


@pytest.fixture
def tight_cairn(workdir):
    server = serve(workdir, lambda data: config_text(data, top=CEILING))
    yield server
    server.stop()


def stalled_upload(endpoint, length, user="alice"):
    """A connection that declares a body of `length` bytes and sends only its first byte;
    signed by `user` (as far as headers can be), or not at all when `user` is None."""
    host = urllib.parse.urlparse(endpoint).netloc
    address, port = host.split(":")
    headers = {"Host": host, "Content-Type": "application/json"}
    if user:
        u = USERS[user]
        signed = signed_request(endpoint, u["key"], u["secret"], b"{" + b" " * (length - 1), target="",
                                path="/records")
        headers = dict(signed.header_items())
    sock = socket.create_connection((address, int(port)))
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items() if name.lower() != "content-length")
    sock.sendall(f"POST /records HTTP/1.1\r\n{head}Content-Length: {length}\r\n\r\n{{".encode())
    return sock


def test_a_full_ceiling_throttles_until_a_stalled_body_times_out(tight_cairn):
    cairn = tight_cairn
    client = cairn.client("alice")
    client.lookup_events(MaxResults=1)
    stalled = stalled_upload(cairn.endpoint, 1_048_576)
    time.sleep(0.3)  # the server has admitted it and waits for the rest

    error = error_of(client.lookup_events, MaxResults=1)
    assert (error["Code"], error["Message"]) == ("ThrottlingException", "Rate exceeded")
    status, body = put(cairn, "alice", {"Records": [record()]})
    assert (status, body["__type"]) == (429, "ThrottlingException")

    # The stalled caller is answered at the timeout, and its share comes back.
    stalled.settimeout(10)
    answer = stalled.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408") and "RequestTimeoutException" in answer, answer
    stalled.close()
    assert client.lookup_events(MaxResults=1)["Events"]
    # boto3's own retries carry a throttled call through once room returns.
    stalled = stalled_upload(cairn.endpoint, 1_048_576)
    time.sleep(0.3)
    retrying = cairn.client("alice", retries={"max_attempts": 10, "mode": "standard"})
    began = time.time()
    assert retrying.lookup_events(MaxResults=1)["Events"]
    assert time.time() - began > 0.5, "the call was never throttled"
    stalled.close()


def test_callers_without_a_valid_signature_take_no_share(tight_cairn):
    cairn = tight_cairn
    client = cairn.client("alice")
    strangers = [stalled_upload(cairn.endpoint, 1_048_576, user=None) for _ in range(4)]
    time.sleep(0.3)
    # Four unsigned megabyte bodies, stalled, would fill the 1 MiB ceiling four times over.
    client.lookup_events(MaxResults=1)
    status, body = put(cairn, "alice", {"Records": [record()]})
    assert status == 200 and body["failed"] == [], body
    # Each is refused as AWS refuses a request without a signature, once its body is given up on.
    for stranger in strangers:
        stranger.settimeout(10)
        answer = stranger.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 403") and "MissingAuthenticationTokenException" in answer, answer
        stranger.close()


def test_overload_is_slowed_and_nothing_is_lost_or_doubled(tight_cairn):
    cairn = tight_cairn
    padding = "x" * 1500
    threads, batches, per_batch = 12, 6, 100
    throttled, failures = [], []

    def sender():
        for _ in range(batches):
            records = [record(eventName="LoadTest", requestParameters={"padding": padding})
                       for _ in range(per_batch)]
            while True:
                status, body = put(cairn, "alice", {"Records": records})
                if status == 429 and body["__type"] == "ThrottlingException":
                    throttled.append(1)
                    time.sleep(0.02)
                    continue
                # A retry of a throttled batch that had been stored anyway would come back
                # as duplicates.
                if status != 200 or body["failed"] or any(s.get("duplicate") for s in body["successful"]):
                    failures.append((status, body))
                break

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert failures == []
    assert throttled, "twelve callers of ~250 KB bodies never met the 1 MiB ceiling"

    events = lookup_all(cairn.client("alice"),
                        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "LoadTest"}])
    ids = [e["EventId"] for e in events]
    assert len(ids) == threads * batches * per_batch
    assert len(set(ids)) == len(ids)


def test_the_ceiling_must_hold_the_largest_body(workdir):
    config = workdir / "bad.toml"
    config.write_text(config_text(workdir / "data", top="max_inflight_bytes = 1000\n"))
    out = subprocess.run([BIN, "serve", "--config", str(config)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and "max_inflight_bytes" in out.stderr, out.stderr

