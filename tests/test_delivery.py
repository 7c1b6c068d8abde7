"""Trail delivery: routing, file layout, exactly-once across crashes and storage outages,
on the local store and on a real S3-compatible server, read back as a consumer would."""

import gzip
import http.server
import json
import re
import socket
import threading
import time

import botocore.exceptions
import pytest

from conftest import ACCOUNT_A, ACCOUNT_B, ORG_ID, Cairn, free_port, kill_during, s3_settings, serve, trails_config, wait_for
from test_bulk import put, record

KEY = re.compile(
    r"^(?:(?P<prefix>.+)/)?AWSLogs/(?:(?P<org>o-[a-z0-9]+)/)?(?P<account>\d{12})/CloudTrail/(?P<region>[a-z0-9-]+)/"
    r"(?P<y>\d{4})/(?P<m>\d\d)/(?P<d>\d\d)/(?P=account)_CloudTrail_(?P=region)_(?P=y)(?P=m)(?P=d)T\d{4}Z_[A-Za-z0-9]{16}\.json\.gz$"
)
MARK = "delivery-test/1.0"
# Account A's root user, as a record's userIdentity.
ROOT_IDENTITY = {"type": "Root", "principalId": ACCOUNT_A, "arn": f"arn:aws:iam::{ACCOUNT_A}:root", "accountId": ACCOUNT_A}


def local_objects(cairn, bucket="trail-bucket"):
    """Every delivered object of a local bucket: key → records, read with gzip and json."""
    root = cairn.data_dir / "buckets" / bucket
    out = {}
    for path in root.rglob("*.json.gz"):
        if "/CloudTrail-Digest/" in str(path):
            continue
        with gzip.open(path, "rt") as f:
            out[str(path.relative_to(root))] = json.load(f)["Records"]
    return out


def s3_objects(s3, bucket, skip=None, read=None):
    """Every object of an S3 bucket (but those whose key holds `skip`): key → records.
    Objects already in `read` (delivered files never change) are not fetched again; the
    others are added to it."""
    out = {} if read is None else read
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            if (skip and skip in obj["Key"]) or obj["Key"] in out:
                continue
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = json.loads(gzip.decompress(body))["Records"]
    return out


def by_trail(objects):
    """Sent test records per trail (trails use their name as S3KeyPrefix): trail → [eventID]."""
    out = {}
    for key, records in objects.items():
        m = KEY.match(key)
        assert m, key
        for r in records:
            assert r["recipientAccountId"] == m["account"] and r["awsRegion"] == m["region"], key
            if r.get("userAgent") == MARK:
                out.setdefault(m["prefix"], []).append(r["eventID"])
    return out


def marked(account=ACCOUNT_A, region="us-east-1", source="ec2.amazonaws.com", read_only=False, **more):
    r = record(account, awsRegion=region, eventSource=source, readOnly=read_only, userAgent=MARK, **more)
    if source == "iam.amazonaws.com":
        r["resources"] = []
    return r


def send(cairn, user, records):
    status, body = put(cairn, user, {"Records": records})
    assert status == 200 and body["failed"] == [], body


def wait_until_delivered(objects_of, expected, timeout=30):
    """Waits for every expected eventID of every trail, then a little more for strays."""
    def done():
        got = by_trail(objects_of())
        return all(sorted(set(got.get(t, []))) == sorted(ids) for t, ids in expected.items()) and got
    wait_for(done, timeout=timeout, interval=0.3)
    time.sleep(2.5)
    return by_trail(objects_of())


def test_each_event_reaches_exactly_the_trails_it_belongs_to(trails_cairn):
    alice, bob = trails_cairn.client(), trails_cairn.client("bob")
    west = trails_cairn.client(region="us-west-2")
    trails = [
        (alice, dict(Name="east-only")),
        (alice, dict(Name="east-no-global", IncludeGlobalServiceEvents=False)),
        (alice, dict(Name="everywhere", IsMultiRegionTrail=True)),
        (west, dict(Name="west-only")),
        (alice, dict(Name="writes-only")),
        (alice, dict(Name="org-wide", IsOrganizationTrail=True, IsMultiRegionTrail=True)),
        (bob, dict(Name="bob-east")),
    ]
    for client, kw in trails:
        client.create_trail(S3BucketName="trail-bucket", S3KeyPrefix=kw["Name"], **kw)
        client.start_logging(Name=kw["Name"])
    alice.put_event_selectors(TrailName="writes-only", EventSelectors=[{"ReadWriteType": "WriteOnly"}])

    sent_a = [marked(region=r, read_only=ro) for r in ("us-east-1", "us-west-2", "eu-west-1") for ro in (False, True)]
    sent_a += [marked(region="us-east-1", source="iam.amazonaws.com")]
    sent_a += [marked(region="us-east-1", eventCategory="Data", managementEvent=False,
                      resources=[{"type": "AWS::S3::Object", "ARN": "arn:aws:s3:::b/k"}])]
    sent_b = [marked(account=ACCOUNT_B, region=r) for r in ("us-east-1", "us-west-2")]
    send(trails_cairn, "alice", sent_a)
    send(trails_cairn, "bob", sent_b)

    def ids(records, keep):
        return sorted(r["eventID"] for r in records if keep(r))

    def management(r):
        return r.get("eventCategory") == "Management"

    def is_global(r):
        return r["eventSource"] == "iam.amazonaws.com"

    # The oracle, written from AWS's documented rules.
    expected = {
        "east-only": ids(sent_a, lambda r: management(r) and r["awsRegion"] == "us-east-1"),
        "east-no-global": ids(sent_a, lambda r: management(r) and r["awsRegion"] == "us-east-1" and not is_global(r)),
        "everywhere": ids(sent_a, management),
        "west-only": ids(sent_a, lambda r: management(r) and r["awsRegion"] == "us-west-2"),
        "writes-only": ids(sent_a, lambda r: management(r) and r["awsRegion"] == "us-east-1" and not r["readOnly"]),
        "org-wide": ids(sent_a + sent_b, management),
        "bob-east": ids(sent_b, lambda r: r["awsRegion"] == "us-east-1"),
    }
    got = wait_until_delivered(lambda: local_objects(trails_cairn), expected)
    for trail, want in expected.items():
        assert sorted(got.get(trail, [])) == want, trail  # each once: no duplicates
    # Organization trails put each member's events under the organization's folder.
    keys = list(local_objects(trails_cairn))
    assert any(k.startswith(f"org-wide/AWSLogs/{ORG_ID}/{ACCOUNT_B}/CloudTrail/us-west-2/") for k in keys)
    assert not any(k.startswith(f"org-wide/AWSLogs/{ACCOUNT_A}/") for k in keys)
    status = alice.get_trail_status(Name="everywhere")
    assert status["LatestDeliveryTime"].timestamp() > time.time() - 60
    assert "LatestDeliveryError" not in status


def test_stop_logging_and_delete_deliver_what_came_before(trails_cairn):
    ct = trails_cairn.client()
    for name in ("stopped", "deleted"):
        ct.create_trail(Name=name, S3BucketName="trail-bucket", S3KeyPrefix=name)
        ct.start_logging(Name=name)
    before = [marked() for _ in range(5)]
    send(trails_cairn, "alice", before)
    ct.stop_logging(Name="stopped")
    ct.delete_trail(Name="deleted")
    after = [marked() for _ in range(5)]
    send(trails_cairn, "alice", after)
    expected = {"stopped": sorted(r["eventID"] for r in before), "deleted": sorted(r["eventID"] for r in before)}
    got = wait_until_delivered(lambda: local_objects(trails_cairn), expected)
    assert {t: sorted(v) for t, v in got.items()} == expected
    # Its own records: the StopLogging call is the stopped trail's last.
    names = [r["eventName"] for records in local_objects(trails_cairn).values() for r in records]
    assert "StopLogging" in names and "DeleteTrail" in names


def write_through_crashes(cairn, rounds, seconds):
    """Three writers send marked batches (us-east-1 and eu-west-1) while the server is
    SIGKILLed and restarted `rounds` times, after `seconds(round)` each: (acknowledged,
    attempted) eventIDs."""
    acknowledged, attempted = [], []
    for round_ in range(rounds):
        def writer(stop):
            while not stop.is_set():
                batch = [marked(region=("us-east-1", "eu-west-1")[i % 2]) for i in range(50)]
                attempted.extend(r["eventID"] for r in batch)
                try:
                    status, _ = put(cairn, "alice", {"Records": batch})
                except OSError:
                    return
                if status == 200:
                    acknowledged.extend(r["eventID"] for r in batch)

        kill_during(cairn, [writer] * 3, seconds(round_))
        cairn.start()
    return acknowledged, attempted


def arrived(read, acknowledged):
    """Waits until `read()` (eventIDs) holds every acknowledged one, then 2.5 s more for
    strays and duplicates, and reads again."""
    wait_for(lambda: set(acknowledged) <= set(read()), timeout=60, interval=0.5)
    time.sleep(2.5)
    return read()


def test_delivery_survives_repeated_crashes_exactly_once(trails_cairn):
    ct = trails_cairn.client()
    ct.create_trail(Name="crash-proof", S3BucketName="trail-bucket", S3KeyPrefix="crash-proof", IsMultiRegionTrail=True)
    ct.start_logging(Name="crash-proof")
    # A delivery or two happens in each round.
    acknowledged, attempted = write_through_crashes(trails_cairn, 4, lambda r: 1.2 + 0.4 * r)
    assert len(acknowledged) > 500

    # Every acknowledged event arrives; a batch killed before its answer may arrive too
    # (it was durable), but nothing arrives twice.
    got = arrived(lambda: by_trail(local_objects(trails_cairn)).get("crash-proof", []), acknowledged)
    assert len(got) == len(set(got)), "an event was delivered twice"
    assert set(acknowledged) <= set(got) <= set(attempted)


class Proxy:
    """A TCP proxy in front of the S3 server, to cut and restore the network path."""

    def __init__(self, upstream_port):
        self.upstream = upstream_port
        self.port = free_port()
        self.listener = None
        self.connections = []
        self.lock = threading.Lock()

    def start(self):
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def stop(self):
        self.listener.close()
        with self.lock:
            for c in self.connections:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.connections.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream))
            with self.lock:
                self.connections += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def test_s3_delivery_survives_an_outage(workdir, moto_s3):
    port, s3 = moto_s3
    s3.create_bucket(Bucket="s3-trail-bucket")
    proxy = Proxy(port)
    proxy.start()
    server = serve(workdir, lambda data: trails_config(data, tail=s3_settings(proxy.port), local_buckets=False))
    try:
        ct = server.client()
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ct.create_trail(Name="no-bucket", S3BucketName="absent-bucket")
        assert e.value.response["Error"]["Code"] == "S3BucketDoesNotExistException"
        ct.create_trail(Name="s3-trail", S3BucketName="s3-trail-bucket", S3KeyPrefix="s3-trail")
        ct.start_logging(Name="s3-trail")
        first = [marked() for _ in range(20)]
        send(server, "alice", first)
        wait_until_delivered(lambda: s3_objects(s3, "s3-trail-bucket"), {"s3-trail": sorted(r["eventID"] for r in first)})

        proxy.stop()
        during = [marked() for _ in range(30)]
        send(server, "alice", during)
        status = wait_for(lambda: (s := ct.get_trail_status(Name="s3-trail")).get("LatestDeliveryError") and s)
        assert status["LatestDeliveryError"] == "ServiceUnavailable"

        proxy.start()
        after = [marked() for _ in range(10)]
        send(server, "alice", after)
        everything = sorted(r["eventID"] for r in first + during + after)
        got = wait_until_delivered(lambda: s3_objects(s3, "s3-trail-bucket"), {"s3-trail": everything})
        assert sorted(got["s3-trail"]) == everything
        assert "LatestDeliveryError" not in ct.get_trail_status(Name="s3-trail")
    finally:
        server.stop()
        proxy.stop()


def test_delivery_notifications_reach_the_webhook(workdir):
    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
    server = serve(workdir, lambda data: trails_config(data, tail=f'[notifications]\n"audit-topic" = "{url}"\n'))
    try:
        ct = server.client()
        ct.create_trail(Name="notified", S3BucketName="trail-bucket", SnsTopicName="audit-topic")
        ct.start_logging(Name="notified")
        send(server, "alice", [marked() for _ in range(3)])
        wait_for(lambda: received)
        message = received[0]
        assert message["s3Bucket"] == "trail-bucket"
        assert message["s3ObjectKey"] and all(KEY.match(k) for k in message["s3ObjectKey"])
        # Every delivered file is announced, and every announced file was delivered.
        wait_for(lambda: set(local_objects(server)) == {k for m in received for k in m["s3ObjectKey"]})
        assert "LatestNotificationTime" in ct.get_trail_status(Name="notified")
    finally:
        server.stop()
        hook.shutdown()


def test_sigterm_delivers_everything_acknowledged_before_it(workdir):
    """With a 15-minute delivery interval nothing is due when SIGTERM comes; the shutdown's
    last delivery writes every acknowledged event anyway."""
    config = workdir / "cairn.toml"
    config.write_text(trails_config(workdir / "data"))
    server = Cairn(workdir / "data", config=config, env={"CAIRN_DELIVERY_INTERVAL_MS": "900000"}).start()
    try:
        ct = server.client()
        ct.create_trail(Name="graceful", S3BucketName="trail-bucket", S3KeyPrefix="graceful")
        ct.start_logging(Name="graceful")
        sent = [marked() for _ in range(40)]
        send(server, "alice", sent)
        assert by_trail(local_objects(server)) == {}
    finally:
        server.stop()
    assert server.proc.returncode == 0
    assert sorted(by_trail(local_objects(server))["graceful"]) == sorted(r["eventID"] for r in sent)
