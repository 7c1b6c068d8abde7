"""A full disk: callers get a clear 503 in AWS's shape, nothing is corrupted, and Cairn
recovers by itself when space returns. Runs on a small tmpfs, which needs root (or sudo
without a password)."""

import os
import subprocess

import botocore.exceptions
import pytest

from conftest import Cairn, all_records, config_text


@pytest.fixture
def small_disk(workdir):
    mount = workdir / "small"
    mount.mkdir()
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    done = subprocess.run(sudo + ["mount", "-t", "tmpfs", "-o", "size=8m,mode=1777", "tmpfs", str(mount)],
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
