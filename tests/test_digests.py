"""Log file integrity validation: Cairn's signed digest chains, checked by the official
`aws cloudtrail validate-logs` against a real S3 server, after every kind of tampering."""

import base64
import gzip
import hashlib
import json
import os
import re
import subprocess
import time
from datetime import datetime, timedelta, timezone

import botocore.exceptions
import pytest
import rsa

from conftest import BIN, USERS, s3_settings, serve, trails_config, wait_for
from test_delivery import marked, send

BUCKET = "signed-bucket"


def digest_keys(s3, bucket=BUCKET):
    keys = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", []) if "/CloudTrail-Digest/" in o["Key"]]
    return sorted(keys)


def log_keys(s3, bucket=BUCKET):
    keys = []
    for page in s3.get_paginator("list_objects").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", []) if "/CloudTrail/" in o["Key"]]
    return sorted(keys)


def read_digest(s3, key, bucket=BUCKET):
    obj = s3.get_object(Bucket=bucket, Key=key)
    return json.loads(gzip.decompress(obj["Body"].read())), obj["Metadata"]


def wait_until_settled(list_keys, quiet=4.0, timeout=60):
    """Waits until the listing stops changing for `quiet` seconds; returns it."""
    deadline = time.time() + timeout
    last, since = None, time.time()
    while time.time() < deadline:
        now = list_keys()
        if now != last:
            last, since = now, time.time()
        elif now and time.time() - since >= quiet:
            return now
        time.sleep(0.3)
    raise AssertionError(f"the listing did not settle: {last}")


def aws_validate(server, s3_port, trail_arn, start, user="alice", cairn=False, region="us-east-1", end=None):
    """Runs the AWS CLI's validator (or, with `cairn`, Cairn's) with S3 on moto_server and
    CloudTrail on Cairn."""
    u = USERS[user]
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=u["key"],
        AWS_SECRET_ACCESS_KEY=u["secret"],
        AWS_ENDPOINT_URL_S3=f"http://127.0.0.1:{s3_port}",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    env.pop("AWS_PROFILE", None)
    command = [BIN, "validate-logs"] if cairn else ["aws", "cloudtrail", "validate-logs"]
    out = subprocess.run(
        command + ["--trail-arn", trail_arn, "--start-time",
         start.strftime("%Y-%m-%dT%H:%M:%SZ"), "--endpoint-url", server.endpoint, "--region", region,
         "--verbose"] + (["--end-time", end.strftime("%Y-%m-%dT%H:%M:%SZ")] if end else []),
        capture_output=True, text=True, env=env, timeout=300,
    )
    return out.returncode, out.stdout, out.stderr


@pytest.fixture
def signed(workdir, moto_s3):
    """A validated trail on moto_server with two-second digests, logging stopped after
    events in several deliveries: (server, s3 port, s3 client, trail ARN, start time)."""
    port, s3 = moto_s3
    s3.create_bucket(Bucket=BUCKET)
    server = serve(workdir, lambda data: trails_config(
        data, tail=s3_settings(port), local_buckets=False))
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    ct = server.client()
    arn = ct.create_trail(Name="signed", S3BucketName=BUCKET, S3KeyPrefix="audit",
                          EnableLogFileValidation=True, IsMultiRegionTrail=True)["TrailARN"]
    ct.start_logging(Name="signed")
    for batch in range(4):
        send(server, "alice", [marked(region=region) for region in ("us-east-1", "eu-west-1") for _ in range(10)])
        time.sleep(1.5)
    ct.stop_logging(Name="signed")
    wait_until_settled(lambda: digest_keys(s3) + log_keys(s3))
    try:
        yield server, port, s3, arn, start
    finally:
        server.stop()


def test_the_aws_cli_validates_every_digest_and_log_file(signed):
    server, port, s3, arn, start = signed
    digests, logs = digest_keys(s3), log_keys(s3)
    home = [k for k in digests if "/CloudTrail-Digest/us-east-1/" in k]
    assert len(home) >= 3, digests
    assert any("/CloudTrail-Digest/eu-west-1/" in k for k in digests)

    # Every log file is listed in exactly one digest, with the hash of its uncompressed bytes.
    listed = {}
    for key in digests:
        digest, metadata = read_digest(s3, key)
        assert metadata["signature-algorithm"] == "SHA256withRSA"
        assert digest["digestS3Bucket"] == BUCKET and digest["digestS3Object"] == key
        for log in digest["logFiles"]:
            assert log["s3Object"] not in listed
            body = s3.get_object(Bucket=BUCKET, Key=log["s3Object"])["Body"].read()
            assert log["hashValue"] == hashlib.sha256(gzip.decompress(body)).hexdigest()
            listed[log["s3Object"]] = key
    assert sorted(listed) == logs

    # The chain: the first digest starts it, each next one links to the one before.
    chain = [read_digest(s3, k)[0] for k in home]
    assert chain[0]["previousDigestSignature"] is None and chain[0]["previousDigestS3Object"] is None
    for before, after in zip(chain, chain[1:]):
        assert after["previousDigestS3Object"] == before["digestS3Object"]
        assert after["digestStartTime"] == before["digestEndTime"]

    code, out, err = aws_validate(server, port, arn, start)
    assert code == 0, out + err
    assert f"{len(home)}/{len(home)} digest files valid" in out, out
    home_logs = [k for k in logs if "/CloudTrail/us-east-1/" in k]
    assert f"{len(home_logs)}/{len(home_logs)} log files valid" in out, out
    assert "INVALID" not in out + err

    # Cairn's validator says the same, file for file.
    code, cairn_out, cairn_err = aws_validate(server, port, arn, start, cairn=True)
    assert code == 0, cairn_out + cairn_err
    assert summary(cairn_out) == summary(out)
    # In the same order: each digest, then the log files it lists.
    drop_now = lambda text: [line for line in text.splitlines()
                             if not line.startswith(("Results requested", "Validating log files"))]
    assert drop_now(cairn_out) == drop_now(out)
    # Another region's chain, as `--region` selects it.
    code, eu_out, _ = aws_validate(server, port, arn, start, cairn=True, region="eu-west-1")
    assert code == 0 and re.search(r"^(\d+)/\1 digest files valid", eu_out, re.M), eu_out


def summary(out):
    """The AWS CLI's summary: the found range and the valid/INVALID counts."""
    return re.findall(r"^(?:Results found .*|\d+/\d+ [a-z ]+ files valid.*)$", out, re.M)


def rewrite(s3, key, body, metadata):
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, Metadata=metadata)


def gz(value):
    return gzip.compress(json.dumps(value).encode())


def digest_key_at(key, when):
    """`key` as if its digest had ended at `when`: its date folder and time changed."""
    key = re.sub(r"/\d{4}/\d\d/\d\d/", when.strftime("/%Y/%m/%d/"), key)
    return re.sub(r"_\d{8}T\d{6}Z\.json\.gz$", when.strftime("_%Y%m%dT%H%M%SZ.json.gz"), key)


def test_the_aws_cli_reports_each_kind_of_tampering(signed):
    server, port, s3, arn, start = signed
    digests = [k for k in digest_keys(s3) if "/CloudTrail-Digest/us-east-1/" in k]
    with_logs = [k for k in digests if read_digest(s3, k)[0]["logFiles"]]
    victim_digest = with_logs[0]
    digest, metadata = read_digest(s3, victim_digest)
    digest_bytes = s3.get_object(Bucket=BUCKET, Key=victim_digest)["Body"].read()
    victim_log = digest["logFiles"][0]["s3Object"]
    log_bytes = s3.get_object(Bucket=BUCKET, Key=victim_log)["Body"].read()

    def check(expected):
        code, out, err = aws_validate(server, port, arn, start)
        assert code == 1, out + err
        assert expected in err, err
        # Cairn's validator reports the same problem with the same counts.
        code, cairn_out, cairn_err = aws_validate(server, port, arn, start, cairn=True)
        assert code == 1, cairn_out + cairn_err
        assert expected in cairn_err, cairn_err
        assert summary(cairn_out) == summary(out), (cairn_out, out)
        return out, err

    # An edited log file.
    records = json.loads(gzip.decompress(log_bytes))
    records["Records"][0]["eventName"] = "NothingToSeeHere"
    rewrite(s3, victim_log, gz(records), {})
    out, _ = check(f"Log file\ts3://{BUCKET}/{victim_log}\tINVALID: hash value doesn't match")
    assert re.search(r", 1/\d+ log files INVALID", out), out
    # A deleted log file.
    s3.delete_object(Bucket=BUCKET, Key=victim_log)
    check(f"Log file\ts3://{BUCKET}/{victim_log}\tINVALID: not found")
    rewrite(s3, victim_log, log_bytes, {})

    # An edited digest: its signature no longer matches.
    forged = dict(digest, logFiles=digest["logFiles"][1:])
    rewrite(s3, victim_digest, gz(forged), metadata)
    out, _ = check(f"Digest file\ts3://{BUCKET}/{victim_digest}\tINVALID: signature verification failed")
    assert re.search(r", 1/\d+ digest files INVALID", out), out
    # A deleted digest.
    s3.delete_object(Bucket=BUCKET, Key=victim_digest)
    check(f"Digest file\ts3://{BUCKET}/{victim_digest}\tINVALID: not found")
    # A digest moved to another key: one after the newest, where validators start their walk.
    newest = re.search(r"_(\d{8}T\d{6})Z\.json\.gz$", digests[-1])[1]
    moved = digest_key_at(victim_digest, datetime.strptime(newest, "%Y%m%dT%H%M%S") + timedelta(seconds=1))
    rewrite(s3, moved, digest_bytes, metadata)
    check("INVALID: has been moved from its original location")
    s3.delete_object(Bucket=BUCKET, Key=moved)
    rewrite(s3, victim_digest, digest_bytes, metadata)

    # A digest re-signed with someone else's key.
    public, private = rsa.newkeys(1024)
    der = public.save_pkcs1("DER")
    forged = dict(digest, digestPublicKeyFingerprint=hashlib.md5(der).hexdigest())
    raw = json.dumps(forged).encode()
    to_sign = "\n".join([forged["digestEndTime"], f"{BUCKET}/{victim_digest}", hashlib.sha256(raw).hexdigest(),
                         forged["previousDigestSignature"] or "null"])
    signature = rsa.sign(to_sign.encode(), private, "SHA-256").hex()
    rewrite(s3, victim_digest, gzip.compress(raw), dict(metadata, signature=signature))
    check(f"INVALID: public key not found in region us-east-1 for fingerprint {forged['digestPublicKeyFingerprint']}")
    rewrite(s3, victim_digest, digest_bytes, metadata)

    code, out, err = aws_validate(server, port, arn, start)
    assert code == 0, out + err


def test_public_keys_verify_digests_and_answer_as_aws_does(signed):
    server, _, s3, _, _ = signed
    ct = server.client()
    keys = ct.list_public_keys()["PublicKeyList"]
    assert len(keys) == 1
    key = keys[0]
    assert hashlib.md5(key["Value"]).hexdigest() == key["Fingerprint"]
    assert len(key["Value"]) == 270
    assert (key["ValidityEndTime"] - key["ValidityStartTime"]).days == 30
    public = rsa.PublicKey.load_pkcs1(key["Value"], format="DER")

    digest_key = digest_keys(s3)[-1]
    obj = s3.get_object(Bucket=BUCKET, Key=digest_key)
    raw = gzip.decompress(obj["Body"].read())
    digest = json.loads(raw)
    assert digest["digestPublicKeyFingerprint"] == key["Fingerprint"]
    to_sign = "\n".join([digest["digestEndTime"], f"{BUCKET}/{digest_key}", hashlib.sha256(raw).hexdigest(),
                         digest["previousDigestSignature"] or "null"])
    assert rsa.verify(to_sign.encode(), bytes.fromhex(obj["Metadata"]["signature"]), public) == "SHA-256"

    # Ranges: keys whose validity meets the range; none before the first key existed.
    past = datetime(2020, 1, 1, tzinfo=timezone.utc)
    assert ct.list_public_keys(StartTime=past, EndTime=past + timedelta(days=1))["PublicKeyList"] == []
    assert len(ct.list_public_keys(StartTime=past)["PublicKeyList"]) == 1
    # Each region signs with its own key.
    eu = server.client(region="eu-west-1").list_public_keys()["PublicKeyList"]
    assert len(eu) == 1 and eu[0]["Fingerprint"] != key["Fingerprint"]
    for bad, code in [(dict(StartTime=past + timedelta(days=2), EndTime=past), "InvalidTimeRangeException"),
                      (dict(NextToken="x"), "InvalidTokenException")]:
        with pytest.raises(botocore.exceptions.ClientError) as e:
            ct.list_public_keys(**bad)
        assert e.value.response["Error"]["Code"] == code

    status = ct.get_trail_status(Name="signed")
    assert "LatestDigestDeliveryError" not in status
    assert status["LatestDigestDeliveryTime"] > datetime.now(timezone.utc) - timedelta(minutes=2)


def local_digests(server, bucket="trail-bucket"):
    """Digests of a local bucket, oldest first: [(key, digest, metadata)]."""
    root = server.data_dir / "buckets" / bucket
    out = []
    for path in sorted(root.rglob("*.json.gz")):
        if "/CloudTrail-Digest/" not in str(path):
            continue
        sidecar = path.with_name(f".{path.name}.metadata.json")
        out.append((str(path.relative_to(root)), json.loads(gzip.decompress(path.read_bytes())),
                    json.loads(sidecar.read_text())))
    return sorted(out, key=lambda d: d[1]["digestEndTime"])


def local_logs(server, bucket="trail-bucket"):
    root = server.data_dir / "buckets" / bucket
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json.gz") if "/CloudTrail/" in str(p))


def test_chains_restart_and_end_as_on_aws(workdir):
    server = serve(workdir, trails_config)
    try:
        ct = server.client()
        ct.create_trail(Name="chain", S3BucketName="trail-bucket", EnableLogFileValidation=True)
        settle = lambda: wait_until_settled(lambda: [d[0] for d in local_digests(server)] + local_logs(server))

        ct.start_logging(Name="chain")
        send(server, "alice", [marked() for _ in range(5)])
        time.sleep(3)
        ct.stop_logging(Name="chain")
        settle()
        first_run = local_digests(server)
        assert first_run[0][1]["previousDigestSignature"] is None
        assert all(d[1]["previousDigestSignature"] for d in first_run[1:])
        listed = lambda: {log["s3Object"] for _, d, _ in local_digests(server) for log in d["logFiles"]}
        # The final digest covers everything up to StopLogging, including its own record.
        assert listed() == set(local_logs(server))

        # Logging again starts a new chain.
        ct.start_logging(Name="chain")
        send(server, "alice", [marked() for _ in range(5)])
        wait_for(lambda: len(local_digests(server)) > len(first_run) + 1, timeout=20)
        restart = local_digests(server)[len(first_run)]
        assert restart[1]["previousDigestS3Object"] is None
        assert restart[1]["digestStartTime"] >= first_run[-1][1]["digestEndTime"]

        # Validation off: a final digest, then nothing digests what is delivered meanwhile.
        ct.update_trail(Name="chain", EnableLogFileValidation=False)
        settle()
        digested = listed()
        root = server.data_dir / "buckets" / "trail-bucket"
        names = lambda key: {r["eventName"] for r in json.loads(gzip.decompress((root / key).read_bytes()))["Records"]}
        # Only the file delivered after the switch, holding the switch itself, is undigested.
        assert all(names(k) == {"UpdateTrail"} for k in set(local_logs(server)) - digested)
        count_off = len(local_digests(server))
        send(server, "alice", [marked() for _ in range(5)])
        settle()
        unlisted = set(local_logs(server)) - digested
        assert any("RunInstances" in names(k) for k in unlisted)
        assert not unlisted & listed()
        assert len(local_digests(server)) == count_off

        # On again: a new chain; deleting the trail ends it with a final digest.
        before = ct.get_trail_status(Name="chain")["LatestDigestDeliveryTime"]
        ct.update_trail(Name="chain", EnableLogFileValidation=True)
        send(server, "alice", [marked() for _ in range(5)])
        wait_for(lambda: ct.get_trail_status(Name="chain")["LatestDigestDeliveryTime"] > before, timeout=20)
        ct.delete_trail(Name="chain")
        settle()
        digests = local_digests(server)
        assert digests[count_off][1]["previousDigestS3Object"] is None
        assert set(local_logs(server)) - listed() == unlisted

        # Local buckets keep the signature beside each digest; it verifies with ListPublicKeys.
        keys = {k["Fingerprint"]: rsa.PublicKey.load_pkcs1(k["Value"], format="DER")
                for k in ct.list_public_keys()["PublicKeyList"]}
        for key, digest, metadata in digests:
            raw = gzip.decompress((root / key).read_bytes())
            to_sign = "\n".join([digest["digestEndTime"], f"trail-bucket/{key}", hashlib.sha256(raw).hexdigest(),
                                 digest["previousDigestSignature"] or "null"])
            assert metadata["signature-algorithm"] == "SHA256withRSA"
            rsa.verify(to_sign.encode(), bytes.fromhex(metadata["signature"]), keys[digest["digestPublicKeyFingerprint"]])
        # Digest times are whole, increasing seconds: the AWS CLI orders digests by them.
        ends = [d[1]["digestEndTime"] for d in digests]
        assert ends == sorted(set(ends))

        # Cairn's validator on the bucket's directory, offline: keys from a file.
        keys_file = workdir / "keys.json"
        keys_file.write_text(json.dumps({"PublicKeyList": [
            {"Fingerprint": k["Fingerprint"], "Value": base64.b64encode(k["Value"]).decode()}
            for k in ct.list_public_keys()["PublicKeyList"]]}))
        first = digests[0][1]["digestStartTime"]
        out = subprocess.run(
            [BIN, "validate-logs", "--trail-arn", "arn:aws:cloudtrail:us-east-1:111111111111:trail/chain",
             "--start-time", first, "--local", str(server.data_dir / "buckets" / "trail-bucket"),
             "--s3-bucket", "trail-bucket", "--public-keys", str(keys_file), "--output", "json"],
            capture_output=True, text=True, env=dict(os.environ, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY=""))
        report = json.loads(out.stdout)
        assert report["digests"] == {"valid": len(digests), "invalid": 0}, report
        assert report["logs"] == {"valid": len(listed()), "invalid": 0}, report
        # Each chain restart is a gap; logs delivered while validation was off are unlisted.
        assert len([p for p in report["problems"] if p["kind"] == "gap"]) == 2, report
        reported = {p["s3Uri"].removeprefix("s3://trail-bucket/") for p in report["problems"] if p["kind"] == "unlisted"}
        # Exactly the unlisted files delivered between the first digest's start and the last
        # digest's end minute (files of that minute may postdate the digest: left out).
        def minute(stamp):
            return datetime.strptime(stamp, "%Y%m%dT%H%MZ").replace(tzinfo=timezone.utc)

        def to_minute(text):
            return minute(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").strftime("%Y%m%dT%H%MZ"))

        start, end = to_minute(first), to_minute(max(d[1]["digestEndTime"] for d in digests))
        expected = {k for k in unlisted if start <= minute(k.rsplit("_", 2)[-2]) < end}
        assert reported == expected, (reported, unlisted)
        assert out.returncode == (1 if reported else 0)
    finally:
        server.stop()


def check_chains(server, bucket="trail-bucket"):
    """Every link of every chain holds (hash and signature of the digest before), and every
    log file in the bucket is listed by exactly one digest."""
    root = server.data_dir / "buckets" / bucket
    digests = {key: (digest, metadata) for key, digest, metadata in local_digests(server, bucket)}
    listed = []
    for key, (digest, _) in digests.items():
        listed += [log["s3Object"] for log in digest["logFiles"]]
        previous = digest["previousDigestS3Object"]
        if previous is None:
            continue
        assert previous in digests, f"{key} links to a missing digest"
        assert digest["previousDigestHashValue"] == hashlib.sha256(gzip.decompress((root / previous).read_bytes())).hexdigest()
        assert digest["previousDigestSignature"] == digests[previous][1]["signature"]
    assert sorted(listed) == local_logs(server, bucket), "a log file is listed twice or not at all"
    return digests


def test_digests_survive_repeated_crashes(workdir):
    server = serve(workdir, trails_config)
    try:
        ct = server.client()
        ct.create_trail(Name="crashing", S3BucketName="trail-bucket", IsMultiRegionTrail=True,
                        EnableLogFileValidation=True)
        ct.start_logging(Name="crashing")
        for round_ in range(4):
            for _ in range(3):
                send(server, "alice", [marked(region=r) for r in ("us-east-1", "eu-west-1") for _ in range(20)])
                time.sleep(0.4)
            time.sleep(0.5 * round_)  # a delivery, or a digest, may be under way
            server.kill()
            server.start()
        server.client().stop_logging(Name="crashing")
        wait_until_settled(lambda: [d[0] for d in local_digests(server)] + local_logs(server))
        digests = check_chains(server)
        starts = [k for k, (d, _) in digests.items() if d["previousDigestS3Object"] is None]
        # One chain per region: crashes do not break a chain.
        assert len(starts) == 2, starts
    finally:
        server.stop()
