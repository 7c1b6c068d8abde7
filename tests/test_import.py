"""`cairn import`: AWS-layout log trees, plain JSON and NDJSON, idempotent, with a summary."""

import gzip
import json
import os
import subprocess
import uuid
from datetime import datetime, timedelta, timezone

from conftest import ACCOUNT_A, ACCOUNT_B, BIN, USERS, Cairn, all_records, config_text, trails_config, wait_for
from test_delivery import local_objects


def record(days_ago=1, **changes):
    when = (datetime.now(timezone.utc) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = {"eventVersion": "1.09", "userIdentity": {"type": "IAMUser", "accountId": ACCOUNT_A, "userName": "ops",
                                                  "arn": f"arn:aws:iam::{ACCOUNT_A}:user/ops", "accessKeyId": "AKIAOPS0000000000001"},
         "eventTime": when, "eventSource": "s3.amazonaws.com", "eventName": "CreateBucket", "awsRegion": "eu-west-1",
         "sourceIPAddress": "192.0.2.1", "userAgent": "aws-cli/2", "requestParameters": {"bucketName": "b"},
         "responseElements": None, "eventID": str(uuid.uuid4()), "readOnly": False, "eventType": "AwsApiCall",
         "managementEvent": True, "recipientAccountId": ACCOUNT_A, "eventCategory": "Management"}
    r.update(changes)
    return r


def write_tree(root):
    """Two gzip log files in AWS's layout, a plain JSON array and an NDJSON file."""
    folder = root / "AWSLogs" / ACCOUNT_A / "CloudTrail" / "eu-west-1" / "2026" / "11" / "20"
    folder.mkdir(parents=True)
    first = [record() for _ in range(30)]
    second = [record() for _ in range(20)] + [first[0]]  # a duplicate across files
    for n, records in enumerate([first, second]):
        name = f"{ACCOUNT_A}_CloudTrail_eu-west-1_20261120T101{n}Z_abcdefgh1234567{n}.json.gz"
        (folder / name).write_bytes(gzip.compress(json.dumps({"Records": records}).encode()))
    (root / "extra.json").write_text(json.dumps([record(), record(days_ago=400)], indent=2))
    (root / "lines.ndjson").write_text("\n".join(json.dumps(r) for r in [record(), record()]) + "\n")
    return first + second[:-1]


def run_import(source, data, *extra, env=None):
    return subprocess.run([BIN, "import", str(source), "--data-dir", str(data), "--quiet", *extra],
                          capture_output=True, text=True, timeout=120, env=env)


def test_import_loads_trees_idempotently_and_keeps_every_field(workdir):
    root = workdir / "logs"
    written = write_tree(root)
    data = workdir / "data"
    out = run_import(root, data)
    assert out.returncode == 0, out.stderr
    assert "4 files: 55 events, 53 stored, 1 duplicates, 1 older than 90 days skipped, 0 rejected" in out.stdout

    again = run_import(root, data)
    assert again.returncode == 0
    assert "55 events, 0 stored, 54 duplicates, 1 older than 90 days skipped" in again.stdout

    config = workdir / "cairn.toml"
    config.write_text(config_text(data))
    server = Cairn(data, config=config).start()
    try:
        found = {r["eventID"]: r for r in all_records(server.client("alice", region="eu-west-1"))}
        for r in written:
            assert found[r["eventID"]] == r
    finally:
        server.stop()


def test_rejected_records_are_reported_with_reasons_and_fail_the_run(workdir):
    root = workdir / "logs"
    root.mkdir()
    bad = record()
    del bad["eventSource"]
    (root / "mixed.json").write_text(json.dumps({"Records": [record(), bad, record(eventTime="soon")]}))
    out = run_import(root, workdir / "data")
    assert out.returncode != 0
    assert "3 events, 1 stored" in out.stdout and "2 rejected" in out.stdout
    assert "FieldNotFound" in out.stdout and "InvalidData" in out.stdout


def test_import_refuses_a_data_directory_in_use(cairn, workdir):
    root = workdir / "logs"
    root.mkdir()
    (root / "one.json").write_text(json.dumps([record()]))
    out = run_import(root, cairn.data_dir)
    assert out.returncode != 0
    assert "in use" in out.stderr


def test_import_reads_an_s3_bucket_idempotently(workdir, moto_s3):
    port, s3 = moto_s3
    root = workdir / "logs"
    written = write_tree(root)
    s3.create_bucket(Bucket="old-trail")
    for path in (root / "AWSLogs").rglob("*.json.gz"):
        s3.put_object(Bucket="old-trail", Key=f"team/{path.relative_to(root)}", Body=path.read_bytes())
    s3.put_object(Bucket="old-trail", Key="team/AWSLogs/notes.txt", Body=b"not a log file")
    s3.put_object(Bucket="old-trail", Key="elsewhere/x.json", Body=json.dumps([record()]))
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    data = workdir / "data"

    def import_s3(location):
        return run_import(location, data, "--s3-endpoint-url", f"http://127.0.0.1:{port}", env=env)
    out = import_s3("s3://old-trail/team/")
    assert out.returncode == 0, out.stderr
    assert "2 files: 51 events, 50 stored, 1 duplicates, 0 older than 90 days skipped, 0 rejected" in out.stdout
    again = import_s3("s3://old-trail/team/")
    assert "51 events, 0 stored, 51 duplicates" in again.stdout, again.stdout
    missing = import_s3("s3://no-such-bucket/")
    assert missing.returncode != 0 and "no-such-bucket" in missing.stderr, missing.stderr

    config = workdir / "cairn.toml"
    config.write_text(config_text(data))
    server = Cairn(data, config=config).start()
    try:
        found = {r["eventID"]: r for r in all_records(server.client("alice", region="eu-west-1"))}
        for r in written[:50]:
            assert found[r["eventID"]] == r
    finally:
        server.stop()


def test_imported_events_reach_the_trails_that_are_logging_only_with_deliver(workdir):
    data = workdir / "data"
    config = workdir / "cairn.toml"
    config.write_text(trails_config(data))
    server = Cairn(data, config=config).start()
    alice = server.client()
    alice.create_trail(Name="everywhere", S3BucketName="trail-bucket", IsMultiRegionTrail=True)
    alice.start_logging(Name="everywhere")
    alice.create_trail(Name="stopped", S3BucketName="other-bucket", IsMultiRegionTrail=True)
    server.stop()

    quiet, delivered = [record() for _ in range(10)], [record() for _ in range(10)]
    (workdir / "quiet.json").write_text(json.dumps({"Records": quiet}))
    (workdir / "delivered.json").write_text(json.dumps({"Records": delivered}))
    assert run_import(workdir / "quiet.json", data).returncode == 0
    out = run_import(workdir / "delivered.json", data, "--deliver")
    assert out.returncode == 0, out.stderr
    assert "10 new events go to the trails that are logging" in out.stdout

    server = Cairn(data, config=config).start()
    try:
        def delivered_ids():
            return {r["eventID"] for records in local_objects(server).values() for r in records}
        wanted = {r["eventID"] for r in delivered}
        # Both imports are in one delivery: once the second is delivered, the first was passed over.
        ids = wait_for(lambda: (ids := delivered_ids()) >= wanted and ids)
        assert not ids & {r["eventID"] for r in quiet}
        assert local_objects(server, "other-bucket") == {}
        history = {r["eventID"] for r in all_records(server.client(region="eu-west-1"))}
        assert {r["eventID"] for r in quiet + delivered} <= history
    finally:
        server.stop()


def test_import_into_a_running_server_through_its_bulk_endpoint(workdir):
    """`cairn import --endpoint-url` sends the checked records to a running server: they
    reach the history and the trails that are logging, a second run finds them all held,
    and records the caller may not write are listed as rejected."""
    data = workdir / "data"
    config = workdir / "cairn.toml"
    config.write_text(trails_config(data))
    server = Cairn(data, config=config).start()
    try:
        alice = server.client()
        alice.create_trail(Name="everywhere", S3BucketName="trail-bucket", IsMultiRegionTrail=True)
        alice.start_logging(Name="everywhere")
        root = workdir / "logs"
        written = write_tree(root)
        user = USERS["alice"]
        env = dict(os.environ, AWS_ACCESS_KEY_ID=user["key"], AWS_SECRET_ACCESS_KEY=user["secret"])
        through = ("--endpoint-url", server.endpoint)

        out = run_import(root, data, *through, env=env)
        assert out.returncode != 0 and "give --deliver" in out.stderr, out.stderr
        out = run_import(root, data, *through, "--deliver", env=env)
        assert out.returncode == 0, out.stderr
        assert "4 files: 55 events, 53 stored, 1 duplicates, 1 older than 90 days skipped, 0 rejected" in out.stdout
        assert "53 new events go to the trails that are logging now" in out.stdout
        history = {r["eventID"]: r for r in all_records(server.client(region="eu-west-1"))}
        for r in written:
            assert history[r["eventID"]] == r
        wanted = {r["eventID"] for r in written}
        wait_for(lambda: wanted <= {r["eventID"] for records in local_objects(server).values() for r in records})

        again = run_import(root, data, *through, "--deliver", env=env)
        assert "55 events, 0 stored, 54 duplicates" in again.stdout, again.stdout

        # Another account's record: the server refuses it for alice, and the run fails.
        theirs = record(recipientAccountId=ACCOUNT_B)
        theirs["userIdentity"] = dict(theirs["userIdentity"], accountId=ACCOUNT_B)
        (workdir / "theirs.json").write_text(json.dumps([record(), theirs]))
        out = run_import(workdir / "theirs.json", data, *through, "--deliver", env=env)
        assert out.returncode != 0
        assert "2 events, 1 stored" in out.stdout and "1 rejected" in out.stdout, out.stdout
        assert theirs["eventID"] in out.stdout, out.stdout
    finally:
        server.stop()
