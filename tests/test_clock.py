"""Clock jumps: the server's wall clock is stepped forwards and backwards (as NTP or an
operator does) while callers write and Cairn delivers to S3, streams to a log group and
signs digests. Its monotonic clock runs on, as it does on a real machine. Nothing may be
lost or doubled, digest times must keep rising along each chain (they name the digest
files, and validators walk them in that order), every log file must be in exactly one
digest, and both validators must accept the chains.

The clock is moved with libfaketime (Debian's libfaketime), preloaded into the server
alone; its offset is read from a file the test rewrites."""

import glob
import json
import time
from datetime import datetime, timedelta, timezone

from conftest import ACCOUNT_A, lookup_all, s3_settings, serve, trails_config, writing
from test_digests import digest_keys, read_digest
from test_faults import (REGIONS, Ledger, call_api, reconcile_history, reconcile_log_group, reconcile_trail_files,
                         validate_chains, write_records)
from test_log_delivery import ROLE, group_arn

BUCKET = "clock-bucket"
TRAIL = "clock"
TRAIL_ARN = f"arn:aws:cloudtrail:us-east-1:{ACCOUNT_A}:trail/{TRAIL}"
# The server's offset from the real time in seconds, and how long it holds. Each step stays
# within SigV4's 15 minutes of skew, so callers with a true clock are still heard.
STEPS = [(0, 4), (600, 6), (-300, 6), (0, 4)]
FAKETIME = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))


def parse(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def digests(s3, region):
    """A region's digests, by key: key → digest."""
    keys = [k for k in digest_keys(s3, BUCKET) if f"/CloudTrail-Digest/{region}/" in k]
    return {k: read_digest(s3, k, BUCKET)[0] for k in keys}


def test_clock_jumps_lose_double_and_reorder_nothing(workdir, moto_s3):
    assert FAKETIME, "libfaketime is not installed (Debian package libfaketime)"
    port, s3 = moto_s3
    s3.create_bucket(Bucket=BUCKET)
    clock = workdir / "clock-offset"
    clock.write_text("+0")
    env = {"LD_PRELOAD": FAKETIME[0], "FAKETIME_TIMESTAMP_FILE": str(clock), "FAKETIME_NO_CACHE": "1",
           "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    server = serve(workdir, lambda d: trails_config(d, local_buckets=False, tail=s3_settings(port)), env=env)
    start = datetime.now(timezone.utc) - timedelta(minutes=1)
    ledger = Ledger()
    try:
        ct = server.client()
        server.client(service="logs").create_log_group(logGroupName=TRAIL)
        ct.create_trail(Name=TRAIL, S3BucketName=BUCKET, S3KeyPrefix=TRAIL, IsMultiRegionTrail=True,
                        EnableLogFileValidation=True, CloudWatchLogsLogGroupArn=group_arn(TRAIL),
                        CloudWatchLogsRoleArn=ROLE)
        ct.start_logging(Name=TRAIL)
        with writing(lambda stop: write_records(server, ledger, stop),
                     lambda stop: call_api(server, ledger, stop, TRAIL_ARN)):
            for offset, seconds in STEPS:
                clock.write_text(f"{offset:+d}")
                time.sleep(seconds)
                if offset > 0:
                    # Digests follow a clock that jumped ahead: one covers the gap, the
                    # next ones are made at the new time.
                    ahead = datetime.now(timezone.utc) + timedelta(seconds=offset - 60)
                    ends = [parse(d["digestEndTime"]) for d in digests(s3, "us-east-1").values()]
                    assert any(end > ahead for end in ends), "no digest was made after the clock jumped ahead"
        assert ledger.errors == []
        assert ledger.records_acked and ledger.api_acked

        ct.stop_logging(Name=TRAIL)

        objects = reconcile_trail_files(s3, BUCKET, TRAIL, ledger)

        # Each region's chain: times rising with no gap or overlap, each link to the digest
        # before it, and every log file in exactly one digest.
        listed = []
        for region in REGIONS:
            chain = digests(s3, region)
            keys = sorted(chain)
            assert len(keys) >= 3, keys
            for before, after in zip(keys, keys[1:]):
                a, b = chain[before], chain[after]
                assert b["previousDigestS3Object"] == before, (before, after)
                assert b["digestStartTime"] == a["digestEndTime"], (before, after)
                assert parse(b["digestEndTime"]) > parse(b["digestStartTime"]), after
            listed += [f["s3Object"] for d in chain.values() for f in d["logFiles"]]
        assert sorted(listed) == sorted(objects), "log files and digest listings differ"

        # The history and the log group: each once.
        everywhere = datetime.now(timezone.utc) + timedelta(minutes=20)
        reconcile_history(server, ledger, start - timedelta(minutes=10), everywhere)
        reconcile_log_group(server, TRAIL, ledger)
        # The server's own events carry its clock's time: proof that the clock moved.
        times = [parse(json.loads(e["CloudTrailEvent"])["eventTime"]) for e in lookup_all(ct, LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "AddTags"}],
            StartTime=start - timedelta(minutes=10), EndTime=everywhere)]
        assert max(times) > start + timedelta(minutes=9) and min(times) < start, (min(times), max(times))
        validate_chains(server, port, TRAIL_ARN, start - timedelta(minutes=10), everywhere)
        print(f"clock steps {[offset for offset, _ in STEPS]}: {len(ledger.records_acked)} records, "
              f"{len(ledger.api_acked)} API calls, {len(objects)} log files, {len(listed)} listed in digests; "
              "0 lost, 0 doubled")
    finally:
        server.stop()
