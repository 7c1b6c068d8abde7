"""A full disk: callers get a clear 503 in AWS's shape, nothing is corrupted, and Cairn
recovers by itself when space returns, its deliveries and digests included. Runs on a small tmpfs, which needs root (or sudo
without a password)."""

import os
import subprocess
import time
from datetime import datetime, timedelta, timezone

import botocore.exceptions
import pytest

from conftest import ACCOUNT_A, Cairn, all_records, config_text, s3_settings, trails_config, wait_for, writing
from test_bulk import put
from test_delivery import marked
from test_faults import REGIONS, Ledger, reconcile_history, reconcile_trail_files, validate_chains


@pytest.fixture
def small_disk(workdir):
    mount = workdir / "small"
    mount.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    done = subprocess.run(sudo + ["mount", "-t", "tmpfs", "-o", "size=16m,mode=1777", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("mounting a tmpfs needs root: " + done.stderr.decode().strip())
    yield mount
    subprocess.run(sudo + ["umount", "-l", str(mount)], check=False)


def fill(path):
    """Writes zeros until the file system refuses even one more byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_full_disk_gives_503_and_recovers(workdir, small_disk):
    config = workdir / "cairn.toml"
    config.write_text(config_text(small_disk / "data"))
    server = Cairn(small_disk / "data", config=config).start()
    try:
        client = server.client("alice")
        before = [client.lookup_events(MaxResults=1)["ResponseMetadata"]["RequestId"] for _ in range(20)]

        filler = small_disk / "filler"
        fill(filler)
        # The journal's last page may still have room for a record or two.
        def attempt():
            try:
                client.lookup_events(MaxResults=1)
                return None
            except botocore.exceptions.ClientError as e:
                return e.response

        first_failure = next((r for r in (attempt() for _ in range(50)) if r is not None), None)
        assert first_failure is not None, "writes kept succeeding on a full disk"
        failures = [first_failure] + [attempt() for _ in range(4)]
        for response in failures:
            assert response is not None
            assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
            assert response["Error"]["Code"] == "ServiceUnavailableException"
            assert "disk is full" in response["Error"]["Message"]

        os.remove(filler)
        after = [client.lookup_events(MaxResults=1)["ResponseMetadata"]["RequestId"] for _ in range(20)]
    finally:
        server.stop()

    server.start()
    try:
        client = server.client("alice")
        seen = all_records(client)
        request_ids = {r["requestID"] for r in seen}
        assert set(before) <= request_ids and set(after) <= request_ids
        assert not [r for r in seen if r.get("errorCode") == "ServiceUnavailableException"], \
            "refused calls were not recorded (nothing could be written)"
        assert len({r["eventID"] for r in seen}) == len(seen)
    finally:
        server.stop()


def test_a_full_disk_during_delivery_loses_and_doubles_nothing(workdir, small_disk, moto_s3):
    """The disk fills while callers write and Cairn delivers to S3 and signs digests; once
    space returns, every acknowledged record is in the trail's files once and both
    validators accept the chains."""
    port, s3 = moto_s3
    bucket, trail = "full-disk-bucket", "full-disk"
    trail_arn = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_A}:trail/{trail}"
    s3.create_bucket(Bucket=bucket)
    config = workdir / "cairn.toml"
    config.write_text(trails_config(small_disk / "data", local_buckets=False, tail=s3_settings(port)))
    server = Cairn(small_disk / "data", config=config).start()
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    ledger, refused = Ledger(), []

    def write(stop):
        while not stop.is_set():
            batch = [marked(region=REGIONS[i % 2]) for i in range(20)]
            ledger.add("records_sent", [r["eventID"] for r in batch])
            status, body = put(server, "alice", {"Records": batch})
            if status == 200 and body["failed"] == []:
                ledger.add("records_acked", [r["eventID"] for r in batch])
            elif status == 503 and body["__type"] == "ServiceUnavailableException":
                refused.append(body)
            else:
                ledger.add("errors", [(status, body)])
            time.sleep(0.05)

    try:
        ct = server.client()
        ct.create_trail(Name=trail, S3BucketName=bucket, S3KeyPrefix=trail, IsMultiRegionTrail=True,
                        EnableLogFileValidation=True)
        ct.start_logging(Name=trail)
        with writing(write):
            time.sleep(3)
            filler = small_disk / "filler"
            fill(filler)
            wait_for(lambda: refused, timeout=30)
            time.sleep(4)  # deliveries and digests meet the full disk too
            os.remove(filler)
            during = len(ledger.records_acked)
            wait_for(lambda: len(ledger.records_acked) > during + 100, timeout=30)
        assert ledger.errors == []

        server.client().stop_logging(Name=trail)

        reconcile_trail_files(s3, bucket, trail, ledger)
        reconcile_history(server, ledger, start)
        validate_chains(server, port, trail_arn, start)
    finally:
        server.stop()
